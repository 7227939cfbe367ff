#include "common/metrics.h"

#include <exception>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace psrec {
namespace {

// Never destroyed: handles stay valid in threads that outlive main's locals.
prometheus::Registry& ProcessRegistry() {
  static auto* registry = new prometheus::Registry();
  return *registry;
}

// Registering is rare (once per series, then the handle is kept), so one lock keeps it simple.
absl::Mutex& RegistryMutex() {
  static auto* mu = new absl::Mutex();
  return *mu;
}

const prometheus::Histogram::BucketBoundaries& SecondsBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
  return *buckets;
}

}  // namespace

void Counter::Increment(double by) const {
  if (counter_ != nullptr && by > 0) counter_->Increment(by);
}
double Counter::Value() const { return counter_ == nullptr ? 0 : counter_->Value(); }

void Gauge::Set(double value) const {
  if (gauge_ != nullptr) gauge_->Set(value);
}
double Gauge::Value() const { return gauge_ == nullptr ? 0 : gauge_->Value(); }

void Histogram::Observe(double seconds) const {
  if (histogram_ != nullptr) histogram_->Observe(seconds);
}

Counter GetCounter(const std::string& name, const std::string& help, const MetricLabels& labels) {
  absl::MutexLock lock(&RegistryMutex());
  auto& family = prometheus::BuildCounter().Name(name).Help(help).Register(ProcessRegistry());
  return Counter(&family.Add(labels));
}

Gauge GetGauge(const std::string& name, const std::string& help, const MetricLabels& labels) {
  absl::MutexLock lock(&RegistryMutex());
  auto& family = prometheus::BuildGauge().Name(name).Help(help).Register(ProcessRegistry());
  return Gauge(&family.Add(labels));
}

Histogram GetHistogram(const std::string& name, const std::string& help,
                       const MetricLabels& labels) {
  absl::MutexLock lock(&RegistryMutex());
  auto& family = prometheus::BuildHistogram().Name(name).Help(help).Register(ProcessRegistry());
  return Histogram(&family.Add(labels, SecondsBuckets()));
}

// The process's registry, with the refresh callbacks run first.
class MetricsServer::Collector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    absl::MutexLock lock(&mu_);
    for (const auto& refresh : refreshes_) refresh();
    return ProcessRegistry().Collect();
  }
  void Add(std::function<void()> refresh) {
    absl::MutexLock lock(&mu_);
    refreshes_.push_back(std::move(refresh));
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::function<void()>> refreshes_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(int port) {
  const std::string address = absl::StrCat("0.0.0.0:", port);
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  try {
    // civetweb's options: one listening port, and a few threads are plenty for a scraper.
    server->exposer_ = std::make_unique<prometheus::Exposer>(address, /*num_threads=*/2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  const std::vector<int> ports = server->exposer_->GetListeningPorts();
  if (ports.empty()) return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  server->port_ = ports[0];
  server->collector_ = std::make_shared<Collector>();
  server->exposer_->RegisterCollectable(server->collector_);
  PSREC_LOG(INFO) << "metrics at http://0.0.0.0:" << server->port_ << "/metrics";
  return server;
}

MetricsServer::~MetricsServer() {
  // Stop serving before the collector and its callbacks go.
  exposer_.reset();
}

void MetricsServer::AddRefresh(std::function<void()> refresh) {
  collector_->Add(std::move(refresh));
}

}  // namespace psrec
