// What the tests share: temporary directories, synthetic ratings, test certificates, and running
// real `psrec` processes and reading what they leave. Header-only, because tests/CMakeLists.txt
// builds each *_test.cc on its own.
#ifndef PSREC_TESTS_TEST_UTIL_H_
#define PSREC_TESTS_TEST_UTIL_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/rng.h"
#include "gtest/gtest.h"

namespace psrec {
namespace testing_util {

namespace fs = std::filesystem;

inline std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// This test process's own directory under the test temp dir: ctest runs tests in parallel.
// This test process's scratch directory. It is named by the pid, and pids wrap (32768 here), so a
// directory already there was left by an earlier process that had this pid: the first call clears
// it, or a file this process writes could meet a directory of the same name.
inline fs::path TestRoot() {
  static const fs::path root = [] {
    const fs::path dir = fs::path(::testing::TempDir()) / absl::StrCat("psrec_test_", ::getpid());
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    return dir;
  }();
  return root;
}

// The real ml-latest-small beside the repository. A test that reads it skips when it is absent:
//   if (!HasMovieLensSmall("ratings.csv")) GTEST_SKIP() << "no ml-latest-small";
inline std::string MovieLensSmallDir() {
  return PSREC_SOURCE_DIR "/../shared/data/ml-latest-small";
}
inline bool HasMovieLensSmall(const std::string& file) {
  return fs::exists(fs::path(MovieLensSmallDir()) / file);
}

inline fs::path FreshDir(const std::string& name) {
  // ctest runs each test in its own process, two at a time: a directory per process keeps one test
  // from rewriting the data another is reading.
  const fs::path dir = TestRoot() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// `users` users with a taste offset rate `per_user` of `items` items with a quality offset, in half
// stars around `base`, with increasing timestamps: DIR/ratings.csv.
inline void WriteSyntheticRatings(const fs::path& dir, int users, int per_user, int items,
                                  float base) {
  std::ofstream out(dir / "ratings.csv");
  out << "userId,movieId,rating,timestamp\n";
  Rng rng(2024);
  int64_t t = 1'000'000;
  for (int u = 1; u <= users; ++u) {
    const float taste = rng.Unit() * 2 - 1;
    for (int k = 0; k < per_user; ++k) {
      const int item = 1 + static_cast<int>(rng.Below(items));
      const float quality = static_cast<float>(item % 7) * 0.25f - 0.75f;
      const float r = std::clamp(base + taste + quality + (rng.Unit() - 0.5f), 0.5f, 5.0f);
      out << u << "," << item << "," << std::round(r * 2) / 2 << "," << t++ << "\n";
    }
  }
}

// The integration tests' data: 150 users x 40 ratings of 120 items, written once per process.
inline fs::path SyntheticData() {
  static const fs::path dir = [] {
    const fs::path d = FreshDir("data");
    WriteSyntheticRatings(d, 150, 40, 120, 3.5f);
    return d;
  }();
  return dir;
}

// SyntheticData's ratings with a movies.csv for the genre model: item i is listed with genres
// drawn from five by i; every tenth item has "(no genres listed)" and items above 110 are missing
// from the file (no genre either).
inline fs::path GenreData() {
  static const fs::path dir = [] {
    const fs::path d = FreshDir("genre_data");
    fs::copy_file(SyntheticData() / "ratings.csv", d / "ratings.csv");
    std::ofstream out(d / "movies.csv");
    out << "movieId,title,genres\n";
    const char* names[] = {"Action", "Comedy", "Drama", "Horror", "Romance"};
    for (int i = 1; i <= 110; ++i) {
      out << i << ",Movie " << i << " (1990),";
      if (i % 10 == 0) {
        out << "(no genres listed)\n";
        continue;
      }
      out << names[i % 5];
      if (i % 3 == 0) out << "|" << names[(i / 3) % 5];
      out << "\n";
    }
    return d;
  }();
  return dir;
}

// Two CAs; "server" and "client" certificates signed by CA "ca_a", a "rogue" one by "ca_b", each as
// NAME.pem and NAME.key in the returned directory, made once per process with the openssl command.
// Every leaf names localhost and 127.0.0.1.
inline fs::path TestCertificates() {
  static const fs::path dir = [] {
    const fs::path d = FreshDir("certs");
    std::ofstream(d / "leaf.ext") << "basicConstraints=CA:FALSE\n"
                                     "keyUsage=digitalSignature,keyEncipherment\n"
                                     "extendedKeyUsage=serverAuth,clientAuth\n"
                                     "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    auto openssl = [&d](const std::string& args) {
      const std::string command =
          absl::StrCat("cd '", d.string(), "' && openssl ", args, " 2>>openssl.log");
      EXPECT_EQ(std::system(command.c_str()), 0) << command << "\n" << ReadFile(d / "openssl.log");
    };
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for (const char* ca : {"ca_a", "ca_b"}) {
      openssl(absl::StrCat("req -x509 ", ec, " -days 2 -subj '/CN=psrec test ", ca, "' -keyout ",
                           ca, ".key -out ", ca, ".pem"));
    }
    for (const auto& [leaf, ca] : {std::pair<const char*, const char*>{"server", "ca_a"},
                                   {"client", "ca_a"},
                                   {"rogue", "ca_b"}}) {
      openssl(absl::StrCat("req -new ", ec, " -subj '/CN=psrec-", leaf, "' -keyout ", leaf,
                           ".key -out ", leaf, ".csr"));
      openssl(absl::StrCat("x509 -req -days 2 -in ", leaf, ".csr -CA ", ca, ".pem -CAkey ", ca,
                           ".key -CAcreateserial -extfile leaf.ext -out ", leaf, ".pem"));
    }
    return d;
  }();
  return dir;
}

struct Result {
  int exit_code = -1;
  std::string out, err;
};

// Runs `psrec args...` to completion (killed after `timeout_s`), capturing stdout and stderr.
inline Result RunPsrec(const std::vector<std::string>& args, const fs::path& dir,
                       int timeout_s = 120) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  std::vector<std::string> quoted;
  for (const std::string& a : args) quoted.push_back("'" + a + "'");
  const std::string command =
      absl::StrCat("timeout -k 5 ", timeout_s, " ", PSREC_BINARY, " ", absl::StrJoin(quoted, " "),
                   " >", out.string(), " 2>", err.string());
  const int status = std::system(command.c_str());
  Result r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

// A psrec process in the background, killed when it goes out of scope. Its stderr goes to `log`,
// and its stdout to `out` when given.
class Background {
 public:
  Background(const std::vector<std::string>& args, const fs::path& log, const fs::path& out = {}) {
    pid_ = fork();
    if (pid_ == 0) {
      freopen(log.c_str(), "w", stderr);
      if (!out.empty()) freopen(out.c_str(), "w", stdout);
      std::vector<char*> argv = {const_cast<char*>(PSREC_BINARY)};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(PSREC_BINARY, argv.data());
      _exit(127);
    }
  }
  ~Background() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  // The exit code once the process has exited, or -1 if it is still running after `timeout_s`
  // (it is then killed) or died of a signal.
  int Wait(int timeout_s) {
    for (int i = 0; i < timeout_s * 20; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "still running after " << timeout_s << " s";
    return -1;
  }

 private:
  pid_t pid_;
};

// Waits up to `timeout_s` for `text` to appear in the file `log` (a process's stderr); false, with
// a test failure showing the log, when it does not.
inline bool WaitForText(const fs::path& log, const std::string& text, int timeout_s = 60) {
  for (int i = 0; i < timeout_s * 100; ++i) {
    if (ReadFile(log).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "no '" << text << "' within " << timeout_s << " s in\n" << ReadFile(log);
  return false;
}

// Waits for a server started with --port_file to report its port.
inline std::string WaitForAddress(const fs::path& port_file) {
  for (int i = 0; i < 300; ++i) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) return absl::StrCat("127.0.0.1:", port);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "no port in " << port_file;
  return "";
}

// The text of the metrics file's "final" object: compared as text, it checks bitwise equality.
inline std::string FinalLine(const fs::path& metrics) {
  const std::string json = ReadFile(metrics);
  const size_t at = json.find("\"final\"");
  return at == std::string::npos ? "(no final in " + metrics.string() + ")" : json.substr(at);
}

inline double FinalMae(const fs::path& metrics) {
  std::smatch m;
  const std::string text = FinalLine(metrics);
  if (!std::regex_search(text, m, std::regex("\"test_mae\": ([0-9.eE+-]+)"))) return NAN;
  return std::stod(m[1]);
}

inline std::vector<std::string> JobFlags(const std::string& extra_model = "bias") {
  return {"--data=" + SyntheticData().string(), "--split=user_time", "--model=" + extra_model,
          "--epochs=3", "--dim=8"};
}

inline std::vector<std::string> Concat(std::vector<std::string> a,
                                       const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Epochs of RecoveryFlags' job.
constexpr int kRecoveryEpochs = 20;

// `psrec train` flags for a 2x2 local cluster with checkpoints after every epoch in DIR/ckpt, short
// leases and --fail_after, and its output in DIR/out and DIR/metrics.json. Small batches make each
// epoch long enough for a kill or a signal to land inside the run.
inline std::vector<std::string> RecoveryFlags(const fs::path& dir) {
  return {"train",
          "--ps_shards=2",
          "--workers=2",
          "--data=" + SyntheticData().string(),
          "--split=user_time",
          "--model=bias",
          "--dim=8",
          "--batch_size=64",
          absl::StrCat("--epochs=", kRecoveryEpochs),
          "--checkpoint_every_secs=0",
          "--checkpoint_dir=" + (dir / "ckpt").string(),
          "--worker_lease=3s",
          "--fail_after=3s",
          "--out_dir=" + (dir / "out").string(),
          "--metrics_out=" + (dir / "metrics.json").string()};
}

// The pid of `role` (ps0, worker1, ...) in OUT_DIR/cluster.json; -1 and a test failure if absent.
inline int PidOf(const fs::path& out_dir, const std::string& role) {
  std::smatch m;
  const std::string cluster = ReadFile(out_dir / "cluster.json");
  if (!std::regex_search(cluster, m,
                         std::regex(absl::StrCat("\"role\": \"", role, "\", \"pid\": ([0-9]+)")))) {
    ADD_FAILURE() << role << " not in " << cluster;
    return -1;
  }
  return std::stoi(m[1]);
}

}  // namespace testing_util
}  // namespace psrec

#endif  // PSREC_TESTS_TEST_UTIL_H_
