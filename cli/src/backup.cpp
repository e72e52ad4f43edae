// `capstan backup FILE`: a consistent copy of the coordinator's live database, written atomically.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "args.h"
#include "commands.h"

namespace capstan::cli {

namespace fs = std::filesystem;

namespace {

constexpr char kSqliteMagic[] = "SQLite format 3"; // and a NUL: the first 16 bytes of the file

// The temporary file beside FILE (mode 0600), removed unless kept by rename.
class PartFile {
public:
  explicit PartFile(const fs::path& target) {
    path_ = (target.parent_path() / ("." + target.filename().string() + ".part-XXXXXX")).string();
    fd_ = ::mkstemp(path_.data());
    if (fd_ < 0) {
      throw CommandError("cannot create a file in " + target.parent_path().string() + ": " +
                             std::strerror(errno),
                         1);
    }
  }
  ~PartFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!kept_) ::unlink(path_.c_str());
  }
  PartFile(const PartFile&) = delete;
  PartFile& operator=(const PartFile&) = delete;

  // Appends; false with errno set when the write failed.
  bool write(const char* data, std::size_t size) {
    while (size > 0) {
      auto n = ::write(fd_, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  }
  // Synced and closed: its bytes are on disk before its name is.
  void finish(const fs::path& target) {
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      int err = errno;
      fd_ = -1;
      throw CommandError("cannot write " + target.string() + ": " + std::strerror(err), 1);
    }
    fd_ = -1;
  }
  const std::string& path() const { return path_; }
  void keep() { kept_ = true; }

private:
  std::string path_;
  int fd_ = -1;
  bool kept_ = false;
};

} // namespace

int cmd_backup(const Globals& g, const Argv& argv) {
  Args a(argv, {{"--force", "", false}});
  const auto& pos = a.positional();
  if (pos.size() != 1) throw UsageError("backup takes one FILE: where to write the copy");
  const bool force = a.has("--force");
  fs::path file = pos[0];
  if (file.filename().empty() || fs::is_directory(file)) {
    throw UsageError("backup FILE must name a file, not a directory: " + file.string());
  }
  fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  if (!fs::is_directory(dir)) {
    throw CommandError(
        "cannot write " + file.string() + ": its directory " + dir.string() + " does not exist", 1);
  }
  file = dir / file.filename();
  std::error_code ec;
  if (fs::exists(fs::symlink_status(file, ec)) && !force) {
    throw CommandError(file.string() + " already exists; give --force to replace it", 1);
  }

  ApiClient api(g);
  PartFile part(file);
  std::string head; // the first bytes, to check that it is a database
  std::uint64_t bytes = 0;
  int write_errno = 0;
  api.download("/api/v1/backup", [&](const char* data, std::size_t size) {
    if (head.size() < sizeof kSqliteMagic) {
      head.append(data, std::min(size, sizeof kSqliteMagic - head.size()));
    }
    bytes += size;
    if (part.write(data, size)) return true;
    write_errno = errno;
    return false;
  });
  if (write_errno != 0) {
    throw CommandError("cannot write " + file.string() + ": " + std::strerror(write_errno) +
                           (write_errno == ENOSPC
                                ? " (the backup was " + std::to_string(bytes) + " bytes in when " +
                                      dir.string() + " ran out of space; nothing was written)"
                                : std::string(" (nothing was written)")),
                       1);
  }
  if (head.size() < sizeof kSqliteMagic ||
      std::memcmp(head.data(), kSqliteMagic, sizeof kSqliteMagic) != 0) {
    throw CommandError("the coordinator at " + api.url() +
                           " did not answer with a database (is it a Capstan coordinator?); " +
                           "nothing was written",
                       1);
  }
  part.finish(file);
  // Without --force an existing file is never replaced, even one that appeared meanwhile.
  int rc = ::renameat2(AT_FDCWD, part.path().c_str(), AT_FDCWD, file.c_str(),
                       force ? 0u : static_cast<unsigned>(RENAME_NOREPLACE));
  if (rc != 0 && errno == EINVAL && !force && !fs::exists(fs::symlink_status(file, ec))) {
    rc = ::rename(part.path().c_str(), file.c_str()); // a file system without RENAME_NOREPLACE
  }
  if (rc != 0) {
    if (errno == EEXIST) {
      throw CommandError(file.string() + " already exists; give --force to replace it", 1);
    }
    throw CommandError("cannot write " + file.string() + ": " + std::strerror(errno), 1);
  }
  part.keep();
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd); // the new name survives a power loss too
    ::close(dir_fd);
  }
  std::cout << "backup of " << api.url() << " written to " << file.string() << " (" << bytes
            << " bytes)\n";
  std::cerr << "It holds no secrets key: keep the coordinator's <data-dir>/secrets.key too, "
               "apart from it.\n";
  return 0;
}

} // namespace capstan::cli
