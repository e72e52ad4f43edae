// A VFS that writes each transaction's write-ahead-log frames in one system call.
#pragma once

namespace capstan::sqlite {

// The name of a VFS, registered on first call, that is SQLite's "unix-excl" VFS except for
// write-ahead logs. "unix-excl" is the unix VFS with the file locks of a process held by the
// process: while any connection of this process has a database open, no other process can open
// it, and the log's index lives in this process's memory, not in a -shm file; connections of the
// process lock against each other in memory, without a system call. For write-ahead logs: SQLite
// writes each log frame as two pwrite calls (its 24-byte header, then the page), and this VFS
// gathers a transaction's frames in memory and writes them at once when the transaction's commit
// frame has been written (or before anything else touches the log: a read, a sync, a truncation,
// its size, closing it). The frames reach the file before COMMIT returns and before SQLite
// publishes the commit in the log's index, so readers, checkpoints and recovery after a crash see
// the same file as with the unix VFS; an error writing them fails the COMMIT as it would have.
// Database and journal files are the base VFS's own, untouched.
const char* wal_batching_vfs();

} // namespace capstan::sqlite
