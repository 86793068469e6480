#include "common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "common/error.h"

namespace focaldet {
namespace {

namespace fs = std::filesystem;

// Every caller reads errno into a local first: building the message allocates, and the temp
// file's cleanup closes and unlinks, any of which may change errno.
[[noreturn]] void fail(const std::string& path, const std::string& what, int err) {
  throw Error("cannot write " + path + ": " + what + ": " + std::strerror(err));
}

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// The open temp file; closes and unlinks it unless released (after the rename).
class TempFile {
 public:
  TempFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Closes the descriptor; returns 0 or the errno of a failed close.
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }
  void release() { path_.clear(); }

 private:
  int fd_;
  std::string path_;
};

// Six random characters from [A-Za-z0-9], as mkstemp's XXXXXX. mkstemp itself is not used: it
// always creates mode 0600, where a new target should get 0666 minus the umask.
std::string random_suffix() {
  static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   (static_cast<uint64_t>(::getpid()) << 32));
  std::string s(6, 'X');
  for (char& c : s) c = kChars[rng() % (sizeof(kChars) - 1)];
  return s;
}

// Creates `<dir>/.<name>.tmp.XXXXXX` exclusively, retrying on a name already taken.
TempFile create_temp(const std::string& path, const fs::path& dir, const std::string& name) {
  constexpr int kAttempts = 100;
  for (int i = 0; i < kAttempts; ++i) {
    const std::string temp = (dir / ("." + name + ".tmp." + random_suffix())).string();
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0) return TempFile(fd, temp);
    const int err = errno;
    if (err != EEXIST) fail(path, "cannot create a temp file in " + dir.string(), err);
  }
  fail(path, "no unused temp file name in " + dir.string(), EEXIST);
}

void write_all(const std::string& path, int fd, std::string_view contents) {
  const char* p = contents.data();
  std::size_t left = contents.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      fail(path, "write failed", err);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

// fsync of the folder makes the rename durable. Filesystems that cannot sync a directory say
// EINVAL; the data itself is already on disk then, so that is not an error.
void sync_folder(const std::string& path, const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    fail(path, "cannot open its folder to sync it", err);
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) fail(path, "cannot sync its folder", err);
}

// Fault injection for the crash tests (tests/train): FOCALDET_FAULT_KILL_IN_WRITE=NAME@N makes
// the N-th write of a file named NAME by this process die by SIGKILL with half of the contents
// in its temp file, as a kill at the worst moment would. Unset (always, outside tests): nothing.
void maybe_kill_midway(const std::string& name, int fd, std::string_view contents) {
  static const char* spec = std::getenv("FOCALDET_FAULT_KILL_IN_WRITE");
  if (spec == nullptr) return;
  const std::string s(spec);
  const auto at = s.rfind('@');
  if (at == std::string::npos || s.substr(0, at) != name) return;
  static std::atomic<int> writes{0};
  if (++writes != std::atoi(s.c_str() + at + 1)) return;
  const auto half = static_cast<ssize_t>(contents.size() / 2);
  if (::write(fd, contents.data(), half) == half) ::fsync(fd);
  ::raise(SIGKILL);
}

}  // namespace

int remove_stale_temp_files(const std::string& folder) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string n = entry.path().filename().string();
    // `.<name>.tmp.XXXXXX`, as create_temp names them.
    const auto tmp = n.rfind(".tmp.");
    if (n.size() > 1 && n[0] == '.' && tmp != std::string::npos && tmp > 0 &&
        n.size() - tmp == 11 && entry.is_regular_file()) {
      removed += fs::remove(entry.path(), ec) ? 1 : 0;
    }
  }
  return removed;
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  const fs::path target(path);
  const std::string name = target.filename().string();
  if (name.empty() || name == "." || name == "..") {
    throw Error("cannot write " + path + ": not a file name");
  }
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");

  // lstat, not stat: a symlink is refused, not followed (rename would replace the link itself).
  struct stat st {};
  bool exists = false;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      throw Error("cannot write " + path + ": it exists and is " + kind_of(st.st_mode) +
                  ", not a regular file; refusing to replace it");
    }
    exists = true;
  } else if (const int err = errno; err != ENOENT) {
    fail(path, "cannot inspect it", err);
  }

  TempFile temp = create_temp(path, dir, name);
  if (exists && ::fchmod(temp.fd(), st.st_mode & 07777) != 0) {
    const int err = errno;
    fail(path, "cannot copy its permissions to the temp file", err);
  }
  maybe_kill_midway(name, temp.fd(), contents);
  write_all(path, temp.fd(), contents);
  if (::fsync(temp.fd()) != 0) {
    const int err = errno;
    fail(path, "fsync failed", err);
  }
  if (const int err = temp.close(); err != 0) fail(path, "close failed", err);
  if (::rename(temp.path().c_str(), path.c_str()) != 0) {
    const int err = errno;
    fail(path, "cannot rename " + temp.path() + " over it", err);
  }
  temp.release();
  sync_folder(path, dir);
}

}  // namespace focaldet
