// focaldet::write_file_atomic (src/common/atomic_file.h): contents and permissions of the
// target, refusal of targets that are not regular files, and no temp file left behind after an
// error. Tests run as root in CI, where permission checks do not apply: errors are forced by a
// parent that is a regular file and by RLIMIT_FSIZE instead of read-only folders.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "support/oracle.h"

namespace focaldet {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The names in `dir`, sorted.
std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A fresh folder, removed at the end of the test.
class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::make_temp_dir("focaldet_atomic_"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

// The message of the Error `fn` throws; fails the test when it throws nothing.
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no focaldet::Error thrown";
  return {};
}

TEST_F(AtomicFile, WritesContentsAndLeavesOnlyTheTarget) {
  const std::string contents("line one\nline two\0binary", 24);
  write_file_atomic(path("out.json"), contents);
  EXPECT_EQ(read_all(path("out.json")), contents);
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"out.json"});
}

TEST_F(AtomicFile, NewFileGetsTheUmaskDefault) {
  const mode_t old = ::umask(022);
  write_file_atomic(path("new.txt"), "x");
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(path("new.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);  // 0666 & ~022, as fopen would give, not mkstemp's 0600
}

TEST_F(AtomicFile, ReplacesExistingFileKeepingItsMode) {
  std::ofstream(path("run.yaml")) << "old contents, longer than the new ones";
  ASSERT_EQ(::chmod(path("run.yaml").c_str(), 0600), 0);
  write_file_atomic(path("run.yaml"), "new");
  EXPECT_EQ(read_all(path("run.yaml")), "new");
  struct stat st {};
  ASSERT_EQ(::stat(path("run.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"run.yaml"});
}

TEST_F(AtomicFile, RefusesFifoAndLeavesIt) {
  ASSERT_EQ(::mkfifo(path("pipe").c_str(), 0600), 0);
  const std::string msg = error_of([&] { write_file_atomic(path("pipe"), "x"); });
  EXPECT_NE(msg.find(path("pipe")), std::string::npos) << msg;
  EXPECT_NE(msg.find("FIFO"), std::string::npos) << msg;
  EXPECT_TRUE(fs::is_fifo(path("pipe")));
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"pipe"});
}

TEST_F(AtomicFile, RefusesSymlinkAndLeavesItAndItsTarget) {
  std::ofstream(path("real.json")) << "kept";
  fs::create_symlink(path("real.json"), path("link.json"));
  const std::string msg = error_of([&] { write_file_atomic(path("link.json"), "x"); });
  EXPECT_NE(msg.find(path("link.json")), std::string::npos) << msg;
  EXPECT_NE(msg.find("symbolic link"), std::string::npos) << msg;
  EXPECT_TRUE(fs::is_symlink(path("link.json")));
  EXPECT_EQ(read_all(path("real.json")), "kept");
  EXPECT_EQ(entries(dir_), (std::vector<std::string>{"link.json", "real.json"}));
}

// Issue 10, finding 1: the temp file was `<out>.tmp.<pid>`, opened without O_EXCL|O_NOFOLLOW,
// so a symlink planted under that predictable name redirected the write (as root: to any file).
// Now the temp name is random and created exclusively: the planted link is never followed.
TEST_F(AtomicFile, SymlinkPlantedAtThePredictableTempNameIsNotFollowed) {
  std::ofstream(path("victim")) << "untouched";
  for (const std::string& planted :
       {"out.json.tmp." + std::to_string(::getpid()), ".out.json.tmp." + std::to_string(::getpid())}) {
    fs::create_symlink(path("victim"), path(planted));
  }
  write_file_atomic(path("out.json"), "results");
  EXPECT_EQ(read_all(path("victim")), "untouched");
  EXPECT_EQ(read_all(path("out.json")), "results");
  EXPECT_TRUE(fs::is_symlink(path("out.json.tmp." + std::to_string(::getpid()))));
}

TEST_F(AtomicFile, RefusesDirectory) {
  fs::create_directory(path("sub"));
  const std::string msg = error_of([&] { write_file_atomic(path("sub"), "x"); });
  EXPECT_NE(msg.find("directory"), std::string::npos) << msg;
  EXPECT_TRUE(fs::is_directory(path("sub")));
}

TEST_F(AtomicFile, ParentThatIsAFileIsAnErrorWithItsCause) {
  std::ofstream(path("plain")) << "not a folder";
  const std::string msg = error_of([&] { write_file_atomic(path("plain/out.json"), "x"); });
  EXPECT_NE(msg.find(path("plain/out.json")), std::string::npos) << msg;
  EXPECT_NE(msg.find("Not a directory"), std::string::npos) << msg;  // ENOTDIR, not a later errno
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"plain"});
  EXPECT_EQ(read_all(path("plain")), "not a folder");
}

TEST_F(AtomicFile, FailedWriteRemovesTheTempFileAndKeepsTheTarget) {
  // The temp file exists when the write fails: RLIMIT_FSIZE makes write() fail with EFBIG
  // (SIGXFSZ ignored so it returns instead of killing the process), whoever runs the test.
  std::ofstream(path("big.json")) << "previous";
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string msg =
      error_of([&] { write_file_atomic(path("big.json"), std::string(100000, 'x')); });
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(msg.find(path("big.json")), std::string::npos) << msg;
  EXPECT_NE(msg.find("File too large"), std::string::npos) << msg;
  EXPECT_EQ(read_all(path("big.json")), "previous");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"big.json"});
}

TEST_F(AtomicFile, PathWithoutFileNameIsAnError) {
  EXPECT_THROW(write_file_atomic(dir_ + "/", "x"), Error);
}

}  // namespace
}  // namespace focaldet
