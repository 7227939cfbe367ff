#include "ps/stream_session.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/time/clock.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "ps/request_metrics.h"
#include "ps/server.h"
#include "ps/stream_answer.h"

namespace psrec {
bool StreamRegistry::Add(StreamSession* session) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return false;
  sessions_.insert(session);
  return true;
}

void StreamRegistry::Remove(StreamSession* session) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(session);
}

void StreamRegistry::Shutdown() {
  std::vector<StreamSession*> open;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    for (StreamSession* session : sessions_) {
      session->Ref();  // keeps it alive until the cancel below is made
      open.push_back(session);
    }
  }
  for (StreamSession* session : open) {
    session->Cancel();
    session->Unref();
  }
}

StreamSession::StreamSession(ParameterServerImpl* server, StreamRegistry* registry,
                             grpc::CallbackServerContext* context)
    : server_(server),
      registry_(registry),
      context_(context),
      peer_(context->peer()),
      pull_seconds_(RequestSeconds("StreamPull")),
      push_seconds_(RequestSeconds("StreamPush")) {
  if (!registry_->Add(this)) {
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
    }
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    reading_ = true;
  }
  StartRead(&incoming_);
}

void StreamSession::Ref() {
  absl::MutexLock lock(&mu_);
  ++refs_;
}

void StreamSession::Unref() {
  bool last;
  {
    absl::MutexLock lock(&mu_);
    last = --refs_ == 0;
  }
  if (last) delete this;
}

// TryCancel must not reach a call that has been finished: between Finish and OnDone the call may
// already be gone (gRPC asserted `prior > 0` in CancelWithError when a stream finished as the
// server shut down). So a finished session is not cancelled, and while the cancel is under way no
// reaction may finish the stream (cancelling_); the cancel's own Schedule finishes it afterwards.
// TryCancel may run OnCancel on this thread before it returns, so mu_ is not held across it.
void StreamSession::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    cancelling_ = true;
  }
  context_->TryCancel();
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    cancelling_ = false;
    Schedule(&actions);
  }
  Perform(actions);
}

std::unique_ptr<StreamRequest> StreamSession::NewRequest() {
  if (spare_.empty()) return std::make_unique<StreamRequest>();
  std::unique_ptr<StreamRequest> request = std::move(spare_.back());
  spare_.pop_back();
  return request;
}

void StreamSession::OnReadDone(bool ok) {
  Actions actions;
  SyncBarrier::Wakeups woken;
  {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (!ok) {
      reads_done_ = true;
    } else {
      Pending pending{NewRequest(), absl::OkStatus(), absl::InfiniteFuture(), absl::Now()};
      grpc::ProtoBufferReader reader(&incoming_);
      if (!reader.status().ok() || !pending.request->ParseFromZeroCopyStream(&reader)) {
        pending.status = absl::InvalidArgumentError("malformed StreamRequest");
      } else {
        pending.status = server_->StreamAdmit(pending.request.get(), peer_, &woken);
        const uint64_t timeout_us = pending.request->timeout_us();
        absl::Duration wait = ParameterServerImpl::kMaxSyncWait;
        if (timeout_us > 0) wait = std::min(wait, absl::Microseconds(timeout_us));
        pending.deadline = absl::Now() + wait;
      }
      incoming_.Clear();
      queue_.push_back(std::move(pending));
      Advance();
    }
    Schedule(&actions);
  }
  woken.Run();  // may wake this session's own parked pull: that takes mu_ itself
  Perform(actions);
}

void StreamSession::Answered(const Pending& pending, const absl::Status& status) {
  const bool pull = pending.request != nullptr && pending.request->has_pull();
  (pull ? pull_seconds_ : push_seconds_)
      .Observe(absl::ToDoubleSeconds(absl::Now() - pending.arrived));
  if (!status.ok()) CountRejected(status.code());
}

void StreamSession::Advance() {
  while (!queue_.empty() && !parked_) {
    grpc::ByteBuffer answer;
    if (!AnswerFront(&answer)) return;
    if (!cancelled_) answers_.push_back(std::move(answer));
    std::unique_ptr<StreamRequest> done = std::move(queue_.front().request);
    queue_.pop_front();
    if (done != nullptr) spare_.push_back(std::move(done));
  }
}

bool StreamSession::AnswerFront(grpc::ByteBuffer* answer) {
  Pending& front = queue_.front();
  if (!front.status.ok() || !front.request->has_pull()) {
    *answer = StatusAnswer(front.status);
    Answered(front, front.status);
    return true;
  }
  const PullRequest& pull = front.request->pull();
  const uint64_t park = ++parks_;
  absl::StatusOr<bool> ready = server_->StreamAwait(
      pull, [this, park](const absl::Status& s) { Wake(park, s); }, &parked_id_);
  if (!ready.ok()) {
    *answer = StatusAnswer(ready.status());
    Answered(front, ready.status());
    return true;
  }
  if (!*ready) {
    parked_ = true;
    SetAlarm(front.deadline);
    return false;
  }
  absl::StatusOr<grpc::ByteBuffer> rows = server_->StreamRead(pull);
  Answered(front, rows.status());
  *answer = rows.ok() ? *std::move(rows) : StatusAnswer(rows.status());
  return true;
}

void StreamSession::SetAlarm(absl::Time deadline) {
  alarm_ = std::make_shared<grpc::Alarm>();
  ++refs_;  // the alarm's callback runs once, fired or cancelled, and drops it
  const uint64_t park = parks_;
  alarm_->Set(absl::ToChronoTime(deadline), [this, park](bool fired) { OnAlarm(park, fired); });
}

void StreamSession::Unpark(const absl::Status& status, Actions* actions) {
  parked_ = false;
  actions->cancel_alarm = std::move(alarm_);
  if (cancelled_) {
    queue_.clear();
    return;
  }
  grpc::ByteBuffer answer;
  if (status.ok()) {
    absl::StatusOr<grpc::ByteBuffer> rows = server_->StreamRead(queue_.front().request->pull());
    Answered(queue_.front(), rows.status());
    answer = rows.ok() ? *std::move(rows) : StatusAnswer(rows.status());
  } else {
    Answered(queue_.front(), status);
    answer = StatusAnswer(status);
  }
  answers_.push_back(std::move(answer));
  spare_.push_back(std::move(queue_.front().request));
  queue_.pop_front();
}

void StreamSession::Wake(uint64_t park, const absl::Status& status) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    // Always true: a wake-up runs once, and only for the park in place.
    if (!parked_ || park != parks_) return;
    Unpark(status, &actions);
    Advance();
    Schedule(&actions);
  }
  Perform(actions);
}

void StreamSession::OnAlarm(uint64_t park, bool fired) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (fired && !finished_ && parked_ && park == parks_ &&
        server_->StreamCancelAwait(parked_id_)) {
      Unpark(server_->StreamTimedOut(queue_.front().request->pull().clock()), &actions);
      Advance();
      Schedule(&actions);
    }
  }
  Perform(actions);
  Unref();
}

void StreamSession::OnWriteDone(bool ok) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    answers_.pop_front();
    if (!ok) cancelled_ = true;  // the stream is broken: nothing more gets through
    Schedule(&actions);
  }
  Perform(actions);
}

void StreamSession::OnCancel() {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (parked_ && server_->StreamCancelAwait(parked_id_)) {
      parked_ = false;
      actions.cancel_alarm = std::move(alarm_);
    }
    if (!parked_) queue_.clear();  // else the wake-up, on its way, clears it
    Schedule(&actions);
  }
  Perform(actions);
}

void StreamSession::Schedule(Actions* actions) {
  if (finished_) return;
  if (cancelled_) {
    // Unwritten answers go; the one being written finishes (or fails) first.
    while (answers_.size() > (writing_ ? 1 : 0)) answers_.pop_back();
  } else {
    if (!writing_ && !answers_.empty()) {
      writing_ = true;
      actions->write = &answers_.front();
    }
    if (!reading_ && !reads_done_ && queue_.size() + answers_.size() < kMaxQueued) {
      reading_ = true;
      actions->read = true;
    }
  }
  const bool idle = !reading_ && !writing_ && !parked_ && !cancelling_;
  if (idle && (cancelled_ || (reads_done_ && queue_.empty() && answers_.empty()))) {
    finished_ = true;
    actions->finish = true;
    actions->finish_status = cancelled_ ? grpc::Status::CANCELLED : grpc::Status::OK;
  }
}

void StreamSession::Perform(const Actions& actions) {
  if (actions.cancel_alarm != nullptr) actions.cancel_alarm->Cancel();
  if (actions.write != nullptr) StartWrite(actions.write);
  if (actions.read) StartRead(&incoming_);
  // Last: once finished, the session may be gone.
  if (actions.finish) Finish(actions.finish_status);
}

void StreamSession::OnDone() {
  registry_->Remove(this);
  Unref();
}

}  // namespace psrec
