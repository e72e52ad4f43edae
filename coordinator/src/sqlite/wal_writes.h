// A VFS that writes each transaction's write-ahead-log frames in one system call.
#pragma once

namespace capstan::sqlite {

// The name of a VFS, registered on first call, that is the default (unix) VFS except for
// write-ahead logs: SQLite writes each log frame as two pwrite calls (its 24-byte header, then
// the page), and this VFS gathers a transaction's frames in memory and writes them at once when
// the transaction's commit frame has been written (or before anything else touches the log: a
// read, a sync, a truncation, its size, closing it). The frames reach the file before COMMIT
// returns and before SQLite publishes the commit in the log's index, so readers, checkpoints and
// recovery after a crash see the same file as with the default VFS; an error writing them fails
// the COMMIT as it would have. Database, journal and shared-memory files are the default VFS's
// own, untouched.
const char* wal_batching_vfs();

} // namespace capstan::sqlite
