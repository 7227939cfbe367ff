// Progress of training on stderr, for long runs: epoch, share done, ratings/s, running loss and
// ETA, at most once per `interval`.
#ifndef PSREC_WORKER_PROGRESS_H_
#define PSREC_WORKER_PROGRESS_H_

#include <cstdint>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "worker/trainer.h"

namespace psrec {

class ProgressLog {
 public:
  // `total` ratings make up the whole of what is being tracked (an epoch, or a worker's partition).
  ProgressLog(uint32_t epoch, uint32_t epochs, uint64_t total, absl::Duration interval)
      : epoch_(epoch),
        epochs_(epochs),
        total_(total),
        interval_(interval),
        start_(absl::Now()),
        last_(start_) {}

  void Update(const TrainStats& so_far) {
    const absl::Time now = absl::Now();
    if (now - last_ < interval_ || so_far.examples == 0) return;
    last_ = now;
    const double rate = static_cast<double>(so_far.examples) / absl::ToDoubleSeconds(now - start_);
    const double eta = static_cast<double>(total_ - so_far.examples) / rate;
    PSREC_LOG(INFO) << absl::StrFormat(
        "epoch %u/%u %3.0f%% of %u ratings, %.0f ratings/s, loss %.4f, ETA %.0fs", epoch_, epochs_,
        100.0 * static_cast<double>(so_far.examples) / static_cast<double>(total_), total_, rate,
        so_far.mean_loss(), eta);
  }

 private:
  uint32_t epoch_, epochs_;
  uint64_t total_;
  absl::Duration interval_;
  absl::Time start_, last_;
};

}  // namespace psrec

#endif  // PSREC_WORKER_PROGRESS_H_
