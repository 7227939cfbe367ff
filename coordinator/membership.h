// Who the workers are: the job's places (num_workers of them), the worker that holds each, and
// whether it is alive.
//
// Leases. A worker is alive while it calls at least once every lease; a worker waiting in a long
// poll (GetWork, Clock) is alive however long it waits there. ExpireLeases takes a silent worker
// for lost: its place is free for a replacement (the next Admit), and until one takes it the lost
// worker gets it back by calling again. A worker id names a place, so a replacement gets its
// predecessor's id.
//
// Thread-safety: none of its own. It lives in CoordinatorState, under that mutex; the gRPC handlers
// and the job loop wait on HasPlace, AllReady, LiveReady and AllToldDoneOrLost with
// absl::Condition, so every call that changes the membership may wake them.
#ifndef PSREC_COORDINATOR_MEMBERSHIP_H_
#define PSREC_COORDINATOR_MEMBERSHIP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/config.pb.h"

namespace psrec {

// The config fields two roles must agree on, as "field: a vs b"; empty when they agree. data_dir
// and rating_offset are the coordinator's to fill in and are not compared, nor is num_shards when
// `theirs` leaves it unset.
std::vector<std::string> RegistrationDifferences(const JobConfig& mine, const JobConfig& theirs);

class Membership {
 public:
  // `places` workers at most, each alive while it calls at least once every `lease`.
  Membership(uint32_t places, absl::Duration lease);

  // A place is free: one never taken, or one whose worker is lost.
  bool HasPlace() const;
  // Gives `name` (for logs) the first place never taken or else the first lost one, seen alive at
  // `now`, and returns its worker id. REQUIRES: HasPlace().
  uint32_t Admit(const std::string& name, absl::Time now);
  // The ids handed out so far are 0 .. size()-1.
  uint32_t size() const { return static_cast<uint32_t>(workers_.size()); }

  // INVALID_ARGUMENT naming `id` when no worker has it, FAILED_PRECONDITION when it has left;
  // otherwise the worker is seen alive at `now`; a lost one is back (logged), and takes part again
  // from the next epoch on.
  absl::Status CheckIn(uint32_t id, absl::Time now);
  // Worker `id` has asked for work, so its data is loaded. REQUIRES: id < size().
  void SetReady(uint32_t id);
  // Worker `id` waits in a long poll, alive, until the matching EndWait, which checks it in at
  // `now`. The calls nest. REQUIRES: id < size().
  void BeginWait(uint32_t id);
  void EndWait(uint32_t id, absl::Time now);
  // Worker `id` has been told that the job is over. REQUIRES: id < size().
  void SetToldDone(uint32_t id);

  // A worker taken for lost by ExpireLeases, and the log line that said so.
  struct Lost {
    uint32_t id;
    std::string what;  // "worker 1 (name) lost: nothing from it for 3.2s"
  };
  // Takes every live worker that is not waiting and was last seen more than a lease before `now`
  // for lost, logging each, in id order.
  std::vector<Lost> ExpireLeases(absl::Time now);
  // Worker `id` says it is stopping (`reason`, e.g. "SIGTERM"): it is lost at once, logged, and
  // none of its later calls brings it back (CheckIn then fails); its place is free for a
  // replacement. INVALID_ARGUMENT when no worker has the id.
  absl::StatusOr<Lost> Leave(uint32_t id, const std::string& reason);

  // Every place is taken by a worker that has asked for work (lost or not).
  bool AllReady() const;
  // Workers that have asked for work, lost or not.
  uint32_t ReadyCount() const;
  // The live workers that have asked for work, by id.
  std::vector<uint32_t> LiveReady() const;
  // Every worker has been told that the job is over, or is lost.
  bool AllToldDoneOrLost() const;

 private:
  struct Worker {
    std::string name;
    bool ready = false;    // has asked for work, so its data is loaded
    bool live = true;      // its lease has not run out
    absl::Time last_seen;  // its last call
    int waiting = 0;       // its calls waiting in a long poll
    bool told_done = false;
    bool left = false;  // said it is stopping (Leave): lost for good
  };

  const uint32_t places_;
  const absl::Duration lease_;
  std::vector<Worker> workers_;  // by id
};

}  // namespace psrec

#endif  // PSREC_COORDINATOR_MEMBERSHIP_H_
