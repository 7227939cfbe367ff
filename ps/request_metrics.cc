#include "ps/request_metrics.h"

namespace psrec {

Histogram RequestSeconds(const std::string& rpc) {
  return GetHistogram("psrec_ps_request_seconds",
                      "Seconds from a request's arrival at its handler to its answer.",
                      {{"rpc", rpc}});
}

void CountRejected(absl::StatusCode code) {
  GetCounter("psrec_ps_rejected_requests_total", "Requests answered with an error, by code.",
             {{"code", absl::StatusCodeToString(code)}})
      .Increment();
}

}  // namespace psrec
