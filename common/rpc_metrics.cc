#include "common/rpc_metrics.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/metrics.h"

namespace psrec {
namespace {

// "/psrec.ParameterServer/Pull" -> "Pull".
std::string ShortMethod(const char* method) {
  const absl::string_view full = method == nullptr ? "" : method;
  const size_t slash = full.rfind('/');
  return std::string(slash == absl::string_view::npos ? full : full.substr(slash + 1));
}

class RequestMetrics final : public grpc::experimental::Interceptor {
 public:
  RequestMetrics(const std::string& prefix, grpc::experimental::ServerRpcInfo* info)
      : prefix_(prefix), method_(ShortMethod(info->method())), start_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      GetHistogram(prefix_ + "_request_seconds", "Seconds from a request's arrival to its answer.",
                   {{"rpc", method_}})
          .Observe(absl::ToDoubleSeconds(absl::Now() - start_));
      const grpc::Status status = methods->GetSendStatus();
      if (!status.ok()) {
        const auto code = static_cast<absl::StatusCode>(status.error_code());
        GetCounter(prefix_ + "_rejected_requests_total",
                   "Requests answered with an error, by code.",
                   {{"code", absl::StatusCodeToString(code)}})
            .Increment();
      }
    }
    methods->Proceed();
  }

 private:
  const std::string& prefix_;  // the factory's, which outlives every call of its server
  const std::string method_;
  const absl::Time start_;
};

class RequestMetricsFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RequestMetricsFactory(std::string prefix) : prefix_(std::move(prefix)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RequestMetrics(prefix_, info);
  }

 private:
  const std::string prefix_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RequestMetricsInterceptor(
    const std::string& prefix) {
  return std::make_unique<RequestMetricsFactory>(prefix);
}

}  // namespace psrec
