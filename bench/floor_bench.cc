// The floor of this machine under issue 10's targets: what a bare transport reaches on loopback
// between two processes, at cluster_bench's message sizes, with none of psrec's code in the way.
//
//   build/bench/floor_bench [--seconds=1] [--repeats=3] [--cluster_bench="COMMAND"]
//
// It forks before gRPC starts. The child serves a generic gRPC callback service (reactions on
// gRPC's threads, reading ahead while it writes, as ps/stream_session does) and a TCP sink. The
// parent measures a memcpy in one process (the user-space copy floor), TCP writes (the kernel's
// copies), and calls on one gRPC stream: pulls (keys in, rows out, 1 in flight), pushes (keys and
// rows in, 16 bytes out; 1 in flight, and 4 as RemoteStore pipelines them), push+pulls (a SYNC
// batch, 1 in flight), and unary pulls. Each end copies a payload once (into or out of a message),
// as any store must; keys are raw 8-byte ids. CPU us/call is both processes' CPU time per call.
//
// --cluster_bench runs that command afterwards, echoes it, and sets its figures against the floor.
// It is run, not linked: its numbers come from the same binary and process layout as its own runs
// (its raw part serves in its own process), and cluster_bench.cc stays as it is.
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_main.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(double, seconds, 1.0, "Seconds of each run of a measurement.");
ABSL_FLAG(int32_t, repeats, 3, "Runs of each measurement; the fastest is reported.");
ABSL_FLAG(std::string, cluster_bench, "",
          "A cluster_bench command to run after the floor; its raw figures (and training ratios, "
          "if it trains) are set against the floor.");

namespace psrec {
namespace {

// bench_main.cc owns main() and parses the flags; --help shows this, set before main runs.
const bool kUsage = (absl::SetProgramUsageMessage(
                         "the floor of this machine's loopback transports, beside cluster_bench: "
                         "floor_bench [--seconds=1] [--repeats=3] [--cluster_bench=COMMAND]"),
                     true);

constexpr size_t kRowBytes = 32 * sizeof(float);
constexpr size_t kBulk = 8192, kSmall = 512;  // keys per call, as cluster_bench's
constexpr size_t kHeader = 8;                 // a request starts with its answer's size

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "floor_bench: %s\n", what.c_str());
  std::exit(1);
}

const std::vector<char>& Source() {  // the bytes every message is copied from
  static const auto* bytes = new std::vector<char>(kHeader + kBulk * (8 + kRowBytes), 1);
  return *bytes;
}

// Copies `buffer`'s bytes into `sink` (a reader's one copy); returns how many.
size_t CopyOut(const grpc::ByteBuffer& buffer, std::vector<char>* sink) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) Die("an unreadable message");
  size_t n = 0;
  for (const grpc::Slice& s : slices) {
    if (sink->size() < n + s.size()) sink->resize(n + s.size());
    std::memcpy(sink->data() + n, s.begin(), s.size());
    n += s.size();
  }
  return n;
}

// `bytes` copied from Source(), starting with `answer_bytes` when there is room.
grpc::ByteBuffer Message(size_t bytes, uint64_t answer_bytes) {
  grpc::Slice slice(bytes);
  auto* p = const_cast<uint8_t*>(slice.begin());  // a fresh slice: ours to write
  std::memcpy(p, Source().data(), bytes);
  if (bytes >= kHeader) std::memcpy(p, &answer_bytes, kHeader);
  return grpc::ByteBuffer(&slice, 1);
}

// One call: answers each request with the bytes it asks for, in order.
class Echo final : public grpc::ServerGenericBidiReactor {
 public:
  explicit Echo(bool unary) : unary_(unary) { StartRead(&in_); }
  void OnReadDone(bool ok) override {
    if (ok) {
      uint64_t bytes = 0;
      if (CopyOut(in_, &sink_) >= kHeader) std::memcpy(&bytes, sink_.data(), kHeader);
      grpc::ByteBuffer answer = Message(std::min<uint64_t>(bytes, Source().size()), 0);
      if (unary_) {
        unary_answer_ = answer;
        return StartWriteAndFinish(&unary_answer_, {}, grpc::Status::OK);
      }
      absl::MutexLock lock(&mu_);
      out_.push_back(answer);
    }
    Next(/*read=*/true, ok);
  }
  void OnWriteDone(bool ok) override { Next(/*read=*/false, ok); }
  void OnDone() override { delete this; }

 private:
  // Decides under mu_, and starts outside it: a reaction may run before a Start call returns.
  void Next(bool read, bool ok) {
    const grpc::ByteBuffer* write = nullptr;
    bool start_read = false, finish = false;
    {
      absl::MutexLock lock(&mu_);
      (read ? reading_ : writing_) = false;
      if (!read && ok) out_.pop_front();
      (read ? reads_done_ : broken_) |= !ok;
      if (!broken_ && !writing_ && !out_.empty()) {
        writing_ = true;
        write = &out_.front();
      }
      start_read = !reading_ && !broken_ && !reads_done_ && out_.size() < 2;
      reading_ |= start_read;
      finish = !reading_ && !writing_ && (broken_ || (reads_done_ && out_.empty()));
    }
    if (write != nullptr) StartWrite(write);
    if (start_read) StartRead(&in_);
    if (finish) Finish(grpc::Status::OK);
  }

  const bool unary_;
  std::vector<char> sink_;
  grpc::ByteBuffer in_, unary_answer_;
  absl::Mutex mu_;
  std::deque<grpc::ByteBuffer> out_ ABSL_GUARDED_BY(mu_);  // front is written if writing_
  bool reading_ ABSL_GUARDED_BY(mu_) = true, writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false, broken_ ABSL_GUARDED_BY(mu_) = false;
};

class EchoService final : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* c) override {
    return new Echo(c->method() == "/floor/Unary");
  }
};

// The child: serves gRPC, writes its port and a TCP sink's to `up`, and sinks TCP connections
// (answering each with its byte count). It dies with the parent, or when the parent kills it.
[[noreturn]] void Serve(int up) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1) _exit(1);
  EchoService service;
  grpc::ServerBuilder builder;
  int ports[2] = {0, 0};
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &ports[0]);
  builder.SetMaxReceiveMessageSize(-1);
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{AF_INET, 0, {htonl(INADDR_LOOPBACK)}, {}};
  socklen_t len = sizeof(addr);
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  if (server == nullptr || bind(listener, sa, len) != 0 || listen(listener, 1) != 0 ||
      getsockname(listener, sa, &len) != 0) {
    Die("the child cannot listen on 127.0.0.1");
  }
  ports[1] = ntohs(addr.sin_port);
  if (write(up, ports, sizeof(ports)) != sizeof(ports)) Die("the child cannot report");
  std::vector<char> buffer(kBulk * kRowBytes);
  for (int fd; (fd = accept(listener, nullptr, nullptr)) >= 0; close(fd)) {
    uint64_t total = 0;
    for (ssize_t n; (n = read(fd, buffer.data(), buffer.size())) > 0;) total += n;
    if (write(fd, &total, sizeof(total)) != sizeof(total)) Die("the TCP sink cannot answer");
  }
  Die("the TCP sink cannot accept");
}

// CPU seconds of process `pid` so far, user and system, from /proc (its name holds no space).
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string field;
  double ticks = 0;
  for (int i = 1; i <= 15 && in >> field; ++i) ticks += i >= 14 ? std::stod(field) : 0;
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Rate {
  double per_second = 0, cpu_us = 0;  // calls (or floats) per second; CPU of both per call
};

// Runs `once` (which returns how many calls it made) for a tenth of --seconds to warm up, then
// --repeats times for --seconds; the fastest run is kept, since a floor is what the machine can
// reach, and a run slowed by a neighbour says little about that.
template <typename F>
Rate Measure(pid_t child, F once) {
  const absl::Duration period = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  for (absl::Time end = absl::Now() + period / 10; absl::Now() < end;) once();
  Rate best;
  for (int r = 0; r < absl::GetFlag(FLAGS_repeats); ++r) {
    const double cpu = CpuSeconds(getpid()) + CpuSeconds(child);
    const absl::Time start = absl::Now();
    double calls = 0;
    while (absl::Now() < start + period) calls += once();
    const double used = CpuSeconds(getpid()) + CpuSeconds(child) - cpu;
    const double rate = calls / absl::ToDoubleSeconds(absl::Now() - start);
    if (rate > best.per_second) best = {rate, 1e6 * used / calls};
  }
  return best;
}

// Calls of `keys` (and their rows if `push`), answered with their rows if `pull` (else with 16
// bytes), `window` in flight at most, on one long-lived bidirectional stream as psrec's.
Rate StreamRate(const std::shared_ptr<grpc::Channel>& channel, pid_t child, size_t keys, bool push,
                bool pull, int window) {
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  auto call = grpc::GenericStub(channel).PrepareCall(&context, "/floor/Stream", &cq);
  const auto next = [&cq] {
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok) || !ok) Die("the floor's gRPC stream failed");
    return tag;
  };
  call->StartCall(nullptr);
  next();
  const size_t request = kHeader + keys * (8 + (push ? kRowBytes : 0));
  const size_t answer = pull ? keys * kRowBytes : 16;
  grpc::ByteBuffer out, in;
  std::vector<char> sink;
  const Rate rate = Measure(child, [&] {  // a burst of 32 calls
    int sent = 0, got = 0;
    for (bool writing = false, reading = false;;) {
      if (!writing && sent < 32 && sent - got < window) {
        out = Message(request, answer);
        call->Write(out, &out);
        writing = true;
        ++sent;
      }
      if (!reading && got < sent) call->Read(&in, &in);
      reading = got < sent;
      if (!writing && !reading) return got;
      if (next() == &out) {
        writing = false;
        continue;
      }
      if (CopyOut(in, &sink) != answer) Die("a stream answer's size is wrong");
      reading = false;
      ++got;
    }
  });
  call->WritesDone(nullptr);
  next();
  grpc::Status status;
  call->Finish(&status, nullptr);
  next();
  return rate;
}

// One unary pull, as synchronous as a stub's call: start it, wait for its answer.
int UnaryPull(const std::shared_ptr<grpc::Channel>& channel, size_t keys) {
  static auto* sink = new std::vector<char>;
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  const grpc::ByteBuffer request = Message(kHeader + keys * 8, keys * kRowBytes);
  auto call = grpc::GenericStub(channel).PrepareUnaryCall(&context, "/floor/Unary", request, &cq);
  call->StartCall();
  grpc::ByteBuffer answer;
  grpc::Status status;
  call->Finish(&answer, &status, &cq);
  void* tag = nullptr;
  bool ok = false;
  if (!cq.Next(&tag, &ok) || !ok || !status.ok() || CopyOut(answer, sink) != keys * kRowBytes) {
    Die("a unary call failed: " + status.error_message());
  }
  return 1;
}

// Writes of 8192 rows per second to the child's TCP sink in --seconds, as the sink counted them.
double TcpRate(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{AF_INET, htons(port), {htonl(INADDR_LOOPBACK)}, {}};
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Die("TCP connect");
  const absl::Time start = absl::Now();
  while (absl::Now() < start + absl::Seconds(absl::GetFlag(FLAGS_seconds))) {
    for (size_t done = 0; done < kBulk * kRowBytes;) {
      const ssize_t n = write(fd, Source().data() + done, kBulk * kRowBytes - done);
      if (n <= 0) Die("TCP write");
      done += static_cast<size_t>(n);
    }
  }
  uint64_t total = 0;
  if (shutdown(fd, SHUT_WR) != 0 || read(fd, &total, sizeof(total)) != sizeof(total)) {
    Die("no count from the TCP sink");
  }
  close(fd);
  return static_cast<double>(total) / (kBulk * kRowBytes) /
         absl::ToDoubleSeconds(absl::Now() - start);
}

using Floor = std::map<std::string, Rate>;

// Measures the floor, printing each row as it comes.
Floor MeasureFloor(pid_t child, const int ports[2]) {
  std::printf("%-60s %10s %12s\n", "floor, loopback, two processes", "rate", "CPU us/call");
  Floor r;
  const auto row = [&](const char* name, const char* key, Rate rate, double scale) {
    rate.per_second *= scale;
    std::printf("%-60s %10.3g %-8s", name, rate.per_second, scale > 1 ? "floats/s" : "calls/s");
    std::printf(rate.cpu_us > 0 ? " %6.0f\n" : "\n", rate.cpu_us);
    std::fflush(stdout);
    r[key] = rate;
  };
  const double bulk = kBulk * 32;
  std::vector<char> to(kBulk * kRowBytes);
  const Rate copies = Measure(child, [&] {
    std::memcpy(to.data(), Source().data(), to.size());
    asm volatile("" : : "r"(to.data()) : "memory");  // the copy counts
    return 1;
  });
  row("memcpy, 8192 x 32 floats, one process", "memcpy", {copies.per_second, 0}, bulk);
  double tcp = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_repeats); ++i) tcp = std::max(tcp, TcpRate(ports[1]));
  row("TCP loopback, writes of 8192 x 32 floats", "tcp", {tcp, 0}, bulk);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", ports[0]),
                                           grpc::InsecureChannelCredentials(), args);
  const auto burst = [&](size_t keys, bool push, bool pull, int window) {
    return StreamRate(channel, child, keys, push, pull, window);
  };
  row("gRPC stream pull, 8192 keys x 32 floats, 1 in flight", "pull", burst(kBulk, false, true, 1),
      bulk);
  row("gRPC stream push, 8192 keys x 32 floats, 1 in flight", "push 1",
      burst(kBulk, true, false, 1), bulk);
  row("gRPC stream push, 8192 keys x 32 floats, 4 in flight", "push 4",
      burst(kBulk, true, false, 4), bulk);
  row("gRPC unary pull, 512 keys x 32 floats, one after another", "unary pull",
      Measure(child, [&] { return UnaryPull(channel, kSmall); }), 1);
  row("gRPC stream pull, 512 keys x 32 floats, 1 in flight", "small pull",
      burst(kSmall, false, true, 1), 1);
  row("gRPC stream push, 512 keys x 32 floats, 1 in flight", "small push 1",
      burst(kSmall, true, false, 1), 1);
  row("gRPC stream push, 512 keys x 32 floats, 4 in flight", "small push 4",
      burst(kSmall, true, false, 4), 1);
  row("gRPC stream push+pull, 512 keys x 32 floats, 1 in flight", "push+pull",
      burst(kSmall, true, true, 1), 1);
  return r;
}

// Runs --cluster_bench, echoes its output, and returns its figures under the floor's names.
std::map<std::string, double> RunClusterBench() {
  FILE* out = popen(absl::GetFlag(FLAGS_cluster_bench).c_str(), "r");
  if (out == nullptr) Die("cannot run --cluster_bench");
  std::map<std::string, double> f;
  char line[512];
  double unused;
  const auto scan = [&](const char* label, const char* format, double* a, double* b) {
    const size_t n = std::strlen(label);
    if (std::strncmp(line, label, n) == 0) std::sscanf(line + n, format, a, b);
  };
  while (std::fgets(line, sizeof(line), out) != nullptr) {
    std::fputs(line, stdout);
    scan("1 ps over gRPC loopback", "%lf %lf", &f["pull"], &f["push"]);
    scan("small calls (512 keys x 32 floats):", "%lf pulls/s, %lf pushes/s", &f["small pull"],
         &f["small push"]);
    scan("in-process", "%lf %lf", &f["in-process"], &unused);
    scan("1 ps x 1 worker, sync", "%lf %lf", &unused, &f["1x1 sync"]);
    scan("1 ps x 1 worker, async", "%lf %lf", &unused, &f["1x1 async"]);
    scan("2 ps x 2 workers, async", "%lf %lf", &unused, &f["2x2 async"]);
  }
  if (pclose(out) != 0) Die("--cluster_bench failed");
  return f;
}

// psrec against the floor, target by target; a push's floor is its faster window. A training floor
// is a bound from the in-process batch time t (512 ratings): SYNC waits for a push+pull each batch,
// t / (t + its round trip); ASYNC may hide the round trip but not its CPU, on 2 cores 2t / (t + CPU
// of a push+pull).
void PrintRatios(const Floor& r, std::map<std::string, double> psrec) {
  std::printf("\n%-32s %10s %10s %12s %8s %13s\n", "target", "psrec", "floor", "psrec/floor",
              "target", "target/floor");
  const auto row = [&](const char* name, const char* key, double floor, double target) {
    if (psrec[key] <= 0) return;  // not in cluster_bench's output (--train=false, --raw=false)
    std::printf("%-32s %10.3g %10.3g %12.2f %8.3g %13.2f\n", name, psrec[key], floor,
                psrec[key] / floor, target, target / floor);
  };
  row("raw pull, floats/s", "pull", r.at("pull").per_second, 3e8);
  const auto best = [&r](const std::string& key) {  // pushes: the better window
    return std::max(r.at(key + " 1").per_second, r.at(key + " 4").per_second);
  };
  row("raw push, floats/s", "push", best("push"), 3e8);
  row("small calls, pulls/s", "small pull", r.at("small pull").per_second, 1e4);
  row("small calls, pushes/s", "small push", best("small push"), 1e4);
  if (psrec["in-process"] <= 0) return;
  const double t = kSmall / psrec["in-process"];
  const double sync = t / (t + 1 / r.at("push+pull").per_second);
  const double async = 2 * t / (t + 1e-6 * r.at("push+pull").cpu_us);
  row("1x1 sync / in-process (bound)", "1x1 sync", sync, 0.5);
  row("1x1 async / in-process (bound)", "1x1 async", async, 0.7);
  row("2x2 async / in-process (bound)", "2x2 async", async, 0.7);
}

}  // namespace

int BenchMain() {
  std::string load;
  std::getline(std::ifstream("/proc/loadavg"), load);
  std::printf("/proc/loadavg: %s; best of %d runs of %g s each\n", load.c_str(),
              absl::GetFlag(FLAGS_repeats), absl::GetFlag(FLAGS_seconds));
  std::fflush(stdout);  // or the child would print it again
  int up[2];
  if (pipe(up) != 0) Die("pipe");
  const pid_t child = fork();  // before anything starts gRPC in this process
  if (child < 0) Die("fork");
  if (child == 0) Serve(up[1]);
  int ports[2];
  if (read(up[0], ports, sizeof(ports)) != sizeof(ports)) Die("the serving child did not start");
  const Floor floor = MeasureFloor(child, ports);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  if (absl::GetFlag(FLAGS_cluster_bench).empty()) return 0;
  std::printf("\n$ %s\n", absl::GetFlag(FLAGS_cluster_bench).c_str());
  std::fflush(stdout);
  PrintRatios(floor, RunClusterBench());
  return 0;
}

}  // namespace psrec
