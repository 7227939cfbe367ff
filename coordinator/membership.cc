#include "coordinator/membership.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/config_diff.h"
#include "common/log.h"

namespace psrec {

std::vector<std::string> RegistrationDifferences(const JobConfig& mine, const JobConfig& theirs) {
  JobConfig a = mine, b = theirs;
  for (JobConfig* c : {&a, &b}) {
    c->clear_data_dir();
    c->clear_rating_offset();
  }
  // A worker started by hand learns the shards from the coordinator and need not be told their
  // count.
  if (!b.has_num_shards()) a.clear_num_shards();
  return ConfigDifferences(a, b);
}

Membership::Membership(uint32_t places, absl::Duration lease) : places_(places), lease_(lease) {}

bool Membership::HasPlace() const {
  return workers_.size() < places_ ||
         std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return !w.live; });
}

uint32_t Membership::Admit(const std::string& name, absl::Time now) {
  PSREC_CHECK(HasPlace());
  uint32_t id = size();
  if (workers_.size() < places_) {
    workers_.emplace_back();
  } else {
    // A replacement takes the place of a worker whose lease ran out.
    id = static_cast<uint32_t>(
        std::find_if(workers_.begin(), workers_.end(), [](const Worker& w) { return !w.live; }) -
        workers_.begin());
    workers_[id] = Worker();
  }
  workers_[id].name = name;
  workers_[id].last_seen = now;
  return id;
}

absl::Status Membership::CheckIn(uint32_t id, absl::Time now) {
  if (id >= workers_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("worker id ", id, " is not registered"));
  }
  Worker& w = workers_[id];
  if (w.left) {
    return absl::FailedPreconditionError(
        absl::StrCat("worker ", id, " (", w.name, ") has left the job"));
  }
  w.last_seen = now;
  if (!w.live) {
    PSREC_LOG(INFO) << "worker " << id << " (" << w.name << ") is back; it joins after this epoch";
    w.live = true;
  }
  return absl::OkStatus();
}

void Membership::SetReady(uint32_t id) { workers_[id].ready = true; }

void Membership::BeginWait(uint32_t id) { ++workers_[id].waiting; }

void Membership::EndWait(uint32_t id, absl::Time now) {
  --workers_[id].waiting;
  CheckIn(id, now).IgnoreError();  // id < size()
}

void Membership::SetToldDone(uint32_t id) { workers_[id].told_done = true; }

std::vector<Membership::Lost> Membership::ExpireLeases(absl::Time now) {
  std::vector<Lost> lost;
  for (uint32_t id = 0; id < workers_.size(); ++id) {
    Worker& w = workers_[id];
    if (!w.live || w.waiting > 0 || now - w.last_seen <= lease_) continue;
    w.live = false;
    lost.push_back({id, absl::StrCat("worker ", id, " (", w.name, ") lost: nothing from it for ",
                                     absl::FormatDuration(now - w.last_seen))});
    PSREC_LOG(WARNING) << lost.back().what;
  }
  return lost;
}

absl::StatusOr<Membership::Lost> Membership::Leave(uint32_t id, const std::string& reason) {
  if (id >= workers_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("worker id ", id, " is not registered"));
  }
  Worker& w = workers_[id];
  w.live = false;
  w.left = true;
  Lost lost{id, absl::StrCat("worker ", id, " (", w.name, ") left: ", reason)};
  PSREC_LOG(WARNING) << lost.what;
  return lost;
}

bool Membership::AllReady() const {
  return workers_.size() == places_ &&
         std::all_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.ready; });
}

uint32_t Membership::ReadyCount() const {
  return static_cast<uint32_t>(
      std::count_if(workers_.begin(), workers_.end(), [](const Worker& w) { return w.ready; }));
}

std::vector<uint32_t> Membership::LiveReady() const {
  std::vector<uint32_t> ids;
  for (uint32_t id = 0; id < workers_.size(); ++id) {
    if (workers_[id].live && workers_[id].ready) ids.push_back(id);
  }
  return ids;
}

bool Membership::AllToldDoneOrLost() const {
  return std::all_of(workers_.begin(), workers_.end(),
                     [](const Worker& w) { return w.told_done || !w.live; });
}

}  // namespace psrec
