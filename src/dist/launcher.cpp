#include "dist/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <set>
#include <thread>

#include "common/error.h"

extern char** environ;

namespace focaldet::dist {
namespace {

std::atomic<int> g_forward_signal{0};
extern "C" void on_launcher_signal(int signal) { g_forward_signal.store(signal); }

// SIGINT / SIGTERM reach the launcher's loop (which passes them on) while it runs.
class ForwardSignals {
 public:
  ForwardSignals() {
    g_forward_signal.store(0);
    struct sigaction action {};
    action.sa_handler = on_launcher_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~ForwardSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  int take() { return g_forward_signal.exchange(0); }

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

// The variables a worker learns its place from; the launcher's own values of these (it may
// itself run under torchrun or srun) must not leak into the workers.
bool is_rendezvous_variable(const std::string& entry) {
  static const char* const kNames[] = {
      "RANK=",         "WORLD_SIZE=",   "LOCAL_RANK=",   "LOCAL_WORLD_SIZE=",
      "MASTER_ADDR=",  "MASTER_PORT=",  "GROUP_RANK=",   "ROLE_RANK=",
      "TORCHELASTIC_", "SLURM_PROCID=", "SLURM_NTASKS=", "SLURM_LOCALID="};
  for (const char* name : kNames) {
    if (entry.rfind(name, 0) == 0) return true;
  }
  return false;
}

using Clock = std::chrono::steady_clock;

struct Worker {
  WorkerExit exit;
  bool running = false;
};

// Starts one worker; returns its pid. The exec's errno comes back through a close-on-exec
// pipe, so a missing executable is an error here rather than a worker exiting 127.
pid_t start_worker(const std::string& executable, const std::vector<std::string>& argv,
                   const std::vector<std::string>& env, pid_t launcher) {
  // Everything the child needs is built before fork: between fork and exec only
  // async-signal-safe calls are allowed (the parent may have threads).
  std::vector<char*> args, envp;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int status_pipe[2];
  check(::pipe2(status_pipe, O_CLOEXEC) == 0,
        std::string("cannot start a worker: pipe: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(status_pipe[0]);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    // A worker left behind by a launcher that died (SIGKILL) would wait in its collectives
    // until the timeout; it gets SIGTERM instead.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != launcher) ::_exit(128 + SIGTERM);
    ::execve(executable.c_str(), args.data(), envp.data());
    const int error = errno;
    (void)!::write(status_pipe[1], &error, sizeof error);
    ::_exit(127);
  }
  ::close(status_pipe[1]);
  if (pid < 0) {
    const int error = errno;
    ::close(status_pipe[0]);
    throw Error(std::string("cannot start a worker: fork: ") + std::strerror(error));
  }
  int exec_error = 0;
  ssize_t got;
  do {
    got = ::read(status_pipe[0], &exec_error, sizeof exec_error);
  } while (got < 0 && errno == EINTR);
  ::close(status_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof exec_error)) {
    ::waitpid(pid, nullptr, 0);
    throw Error("cannot start a worker: " + executable + ": " + std::strerror(exec_error));
  }
  return pid;
}

}  // namespace

std::string WorkerExit::describe() const {
  if (signal != 0) {
    const char* name = ::strsignal(signal);
    return "was killed by signal " + std::to_string(signal) + " (" + (name ? name : "?") + ")";
  }
  return "exited with status " + std::to_string(exit_code);
}

int pick_free_port(const std::string& host) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  check(fd >= 0, std::string("cannot pick a free port: socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    address.sin_addr.s_addr = htonl(INADDR_ANY);
  }
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int error = errno;
  ::close(fd);
  check(ok, "cannot pick a free port on " + host + ": " + std::strerror(error));
  return ntohs(address.sin_port);
}

LaunchResult run_local_workers(int nproc, const std::vector<std::string>& argv,
                               const LaunchOptions& options) {
  check(nproc >= 1, "--nproc must be at least 1, not " + std::to_string(nproc));
  check(!argv.empty(), "launch: the workers' argv is empty (argv[0] comes first)");
  const int port =
      options.master_port > 0 ? options.master_port : pick_free_port(options.master_addr);
  std::vector<std::string> base_env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!is_rendezvous_variable(*e)) base_env.emplace_back(*e);
  }
  base_env.push_back("WORLD_SIZE=" + std::to_string(nproc));
  base_env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(nproc));
  base_env.push_back("MASTER_ADDR=" + options.master_addr);
  base_env.push_back("MASTER_PORT=" + std::to_string(port));
  for (const auto& [name, value] : options.env) base_env.push_back(name + "=" + value);

  const auto say = [&](const std::string& line) {
    if (!options.quiet) std::cerr << "focaldet launcher: " << line << std::endl;
  };
  LaunchResult result;
  std::vector<Worker> workers(nproc);
  ForwardSignals signals;
  const pid_t launcher = ::getpid();
  const auto signal_running = [&](int signal) {
    for (Worker& w : workers) {
      if (w.running) ::kill(w.exit.pid, signal);
    }
  };
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<std::string> env = base_env;
    env.push_back("RANK=" + std::to_string(rank));
    env.push_back("LOCAL_RANK=" + std::to_string(rank));
    workers[rank].exit.rank = rank;
    try {
      workers[rank].exit.pid = start_worker(options.executable, argv, env, launcher);
    } catch (...) {
      signal_running(SIGKILL);
      for (Worker& w : workers) {
        if (w.running) ::waitpid(w.exit.pid, nullptr, 0);
      }
      throw;
    }
    workers[rank].running = true;
  }

  int running = nproc;
  Clock::time_point failed_at{}, terminated_at{};
  bool terminated = false, killed = false;
  while (running > 0) {
    if (const int signal = signals.take(); signal != 0) {
      result.forwarded_signal = signal;
      say("passing signal " + std::to_string(signal) + " on to the workers");
      signal_running(signal);
    }
    for (Worker& w : workers) {
      if (!w.running) continue;
      int status = 0;
      const pid_t done = ::waitpid(w.exit.pid, &status, WNOHANG);
      if (done == 0 || (done < 0 && errno == EINTR)) continue;
      w.running = false;
      --running;
      if (done < 0) {  // not our child any more (reaped elsewhere): nothing to report
        w.exit.exit_code = 0;
        continue;
      }
      if (WIFSIGNALED(status)) {
        w.exit.signal = WTERMSIG(status);
      } else {
        w.exit.exit_code = WEXITSTATUS(status);
      }
      w.exit.stopped_by_launcher = terminated;
      if (w.exit.failed() && result.first_failed_rank < 0) {
        result.first_failed_rank = w.exit.rank;
        failed_at = Clock::now();
        if (running > 0) {
          say("rank " + std::to_string(w.exit.rank) + " " + w.exit.describe() +
              "; the other ranks get " +
              std::to_string(static_cast<long long>(options.failure_timeout_seconds)) +
              " s to stop");
        }
      }
    }
    if (running == 0) break;
    const Clock::time_point now = Clock::now();
    const auto since = [&](Clock::time_point t) {
      return std::chrono::duration<double>(now - t).count();
    };
    if (result.first_failed_rank >= 0 && !terminated &&
        since(failed_at) >= options.failure_timeout_seconds) {
      say("stopping the remaining ranks (SIGTERM)");
      signal_running(SIGTERM);
      terminated = true;
      terminated_at = now;
    } else if (terminated && !killed && since(terminated_at) >= options.kill_grace_seconds) {
      say("killing the remaining ranks (SIGKILL)");
      signal_running(SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  for (const Worker& w : workers) result.workers.push_back(w.exit);
  if (result.first_failed_rank < 0) {
    result.exit_code = 0;
    return result;
  }
  const WorkerExit& first = result.workers[result.first_failed_rank];
  result.exit_code = first.signal != 0 ? 128 + first.signal : first.exit_code;
  if (result.forwarded_signal != 0) {
    result.summary =
        "after signal " + std::to_string(result.forwarded_signal) + " (passed on to the workers): ";
  }
  result.summary += "rank " + std::to_string(first.rank) + " of " + std::to_string(nproc) +
                    " (pid " + std::to_string(first.pid) + ") " + first.describe() +
                    (nproc > 1 ? " first" : "");
  std::string others;
  for (const WorkerExit& w : result.workers) {
    if (w.rank == first.rank) continue;
    others += std::string(others.empty() ? "" : ", ") + "rank " + std::to_string(w.rank) + " " +
              w.describe() + (w.stopped_by_launcher ? " (stopped by the launcher)" : "");
  }
  if (!others.empty()) result.summary += "; " + others;
  return result;
}

int launch_local_workers(int nproc, const std::vector<std::string>& argv,
                         const LaunchOptions& options) {
  const LaunchResult result = run_local_workers(nproc, argv, options);
  if (result.exit_code != 0) std::cerr << "focaldet: " << result.summary << std::endl;
  return result.exit_code;
}

}  // namespace focaldet::dist
