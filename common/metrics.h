// Prometheus metrics of one process: counter, gauge and histogram handles that the roles update at
// their own points, and a /metrics endpoint over HTTP (--metrics_port) that exposes them in
// Prometheus' text format through prometheus-cpp.
//
// Why one registry per process rather than one passed to every class: Prometheus scrapes a process,
// so a process has one exposition, and a handle taken by name from anywhere (a table, the batch
// loop, the job runner) reaches it without threading a registry through every constructor. Tests
// that run several roles in one process see their counts summed; tests of the numbers run the
// roles as processes.
//
// Handles are cheap to copy, valid for the life of the process, and thread-safe. Taking the same
// name, kind and labels twice gives the same series. A default-constructed handle does nothing.
// Every metric name starts with "psrec_" (deploy/NOTES-for-cpp.md lists them).
#ifndef PSREC_COMMON_METRICS_H_
#define PSREC_COMMON_METRICS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Exposer;
}  // namespace prometheus

namespace psrec {

using MetricLabels = std::map<std::string, std::string>;

// Only goes up. Increment by a negative amount is ignored.
class Counter {
 public:
  Counter() = default;
  void Increment(double by = 1.0) const;
  double Value() const;

 private:
  friend Counter GetCounter(const std::string&, const std::string&, const MetricLabels&);
  explicit Counter(prometheus::Counter* counter) : counter_(counter) {}
  prometheus::Counter* counter_ = nullptr;
};

class Gauge {
 public:
  Gauge() = default;
  void Set(double value) const;
  double Value() const;

 private:
  friend Gauge GetGauge(const std::string&, const std::string&, const MetricLabels&);
  explicit Gauge(prometheus::Gauge* gauge) : gauge_(gauge) {}
  prometheus::Gauge* gauge_ = nullptr;
};

// Observations in seconds, in buckets from 100 us to 30 s.
class Histogram {
 public:
  Histogram() = default;
  void Observe(double seconds) const;

 private:
  friend Histogram GetHistogram(const std::string&, const std::string&, const MetricLabels&);
  explicit Histogram(prometheus::Histogram* histogram) : histogram_(histogram) {}
  prometheus::Histogram* histogram_ = nullptr;
};

// The series `name`{labels} of the process's registry, created on first use. `help` is the
// family's HELP line (the first caller's is kept). Aborts if `name` was taken by another kind:
// that is a programming error, not bad input.
Counter GetCounter(const std::string& name, const std::string& help,
                   const MetricLabels& labels = {});
Gauge GetGauge(const std::string& name, const std::string& help, const MetricLabels& labels = {});
Histogram GetHistogram(const std::string& name, const std::string& help,
                       const MetricLabels& labels = {});

// Observes the seconds from construction to destruction.
class ScopedTimer {
 public:
  explicit ScopedTimer(Histogram histogram) : histogram_(histogram), start_(absl::Now()) {}
  ~ScopedTimer() { histogram_.Observe(absl::ToDoubleSeconds(absl::Now() - start_)); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  Histogram histogram_;
  absl::Time start_;
};

// Runs `f` and observes its seconds in `histogram`; returns what `f` returns.
template <typename F>
auto Timed(const Histogram& histogram, F&& f) {
  ScopedTimer timer(histogram);
  return f();
}

// Serves the process's registry at http://0.0.0.0:PORT/metrics, plaintext and without a token,
// until destroyed. Each scrape first runs the refresh callbacks (for values read from a role's
// state, such as a server's row count), one scrape at a time.
class MetricsServer {
 public:
  // `port` 0 picks a free port; logs the address. UNAVAILABLE naming the address when it cannot
  // listen.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(int port);
  ~MetricsServer();

  int port() const { return port_; }
  // `refresh` runs before every scrape, on the HTTP server's thread, until this server is
  // destroyed; it must be thread-safe against the role's own threads.
  void AddRefresh(std::function<void()> refresh);

 private:
  class Collector;
  MetricsServer() = default;
  std::shared_ptr<Collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace psrec

#endif  // PSREC_COMMON_METRICS_H_
