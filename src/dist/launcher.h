#pragma once
// `focaldet train --nproc N`: N worker processes of this executable on this machine, each told
// its rank through the environment torchrun uses (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT=a free port), so that the workers are
// the same code path as under torchrun or srun. Torch-free.
//
// The launcher forwards SIGINT / SIGTERM to the workers (a worker in the terminal's process
// group also gets Ctrl-C directly; the trainer treats a second stop signal like the first) and
// waits. When a worker fails (exit status != 0 or killed by a signal), the others get
// `failure_timeout_seconds` to stop by themselves (their collectives fail as soon as the
// peer's connections close), then SIGTERM, then SIGKILL after `kill_grace_seconds`. A worker
// also gets SIGTERM if the launcher itself dies (PR_SET_PDEATHSIG).
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace focaldet::dist {

struct LaunchOptions {
  std::string executable = "/proc/self/exe";  // what every worker runs
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: a free port on master_addr (pick_free_port)
  double failure_timeout_seconds = 30;
  double kill_grace_seconds = 10;
  std::vector<std::pair<std::string, std::string>> env;  // more variables for every worker
  bool quiet = false;  // true: no progress lines on stderr (the summary is still returned)
};

struct WorkerExit {
  int rank = 0;
  pid_t pid = -1;
  int exit_code = -1;                // -1 when killed by a signal
  int signal = 0;                    // the signal that killed it, 0 when it exited
  bool stopped_by_launcher = false;  // it got SIGTERM / SIGKILL after another rank failed
  bool failed() const { return signal != 0 || exit_code != 0; }
  // "exited with status 3", "was killed by signal 9 (Killed)".
  std::string describe() const;
};

struct LaunchResult {
  int exit_code = 0;                // what `focaldet train --nproc` should exit with
  int first_failed_rank = -1;       // the worker that failed first, -1 when none did
  std::vector<WorkerExit> workers;  // by rank
  int forwarded_signal = 0;         // the last SIGINT / SIGTERM the launcher passed on, 0 if none
  std::string summary;              // one line: which rank failed first, with what status
};

// Starts `nproc` workers running options.executable with `argv` (argv[0] first, the
// launcher's own arguments without --nproc) and waits for all of them. The exit code: 0 when
// every worker succeeded; else the first failed worker's exit status, or 128 + its signal.
// Throws focaldet::Error when nproc < 1 or a worker cannot be started (the ones already
// started are stopped first).
LaunchResult run_local_workers(int nproc, const std::vector<std::string>& argv,
                               const LaunchOptions& options = {});

// run_local_workers, with the summary on stderr when a worker failed; returns the exit code.
int launch_local_workers(int nproc, const std::vector<std::string>& argv,
                         const LaunchOptions& options = {});

// A TCP port that is free on `host` (an IPv4 address) now: the kernel's pick for port 0.
// Another process may take it before it is used; the window is short.
int pick_free_port(const std::string& host = "127.0.0.1");

}  // namespace focaldet::dist
