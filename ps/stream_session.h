// The server's end of one Stream (proto/ps.proto): a gRPC callback reactor that takes a worker's
// requests in, hands each to the server's StreamAdmit / StreamAwait / StreamRead, and writes the
// answers back in request order.
//
// Threading: gRPC runs the reactions (a request read, an answer written, a cancellation) on its
// callback threads, so the work of a request (checks, applying a push, reading rows) runs on the
// thread that read it, with no hand-off. A SYNC pull whose clock is not applied yet does not hold a
// thread: it parks in the barrier, and the thread whose push applies the clock (this stream's or
// another's) reads the rows and starts the answer. Restore and shutdown wake parked pulls the same
// way (ABORTED, UNAVAILABLE). A parked pull's timeout (StreamRequest.timeout_us, at most
// kMaxSyncWait) is a grpc::Alarm.
//
// Order: each request's push is applied when the request arrives; its pull is answered after every
// earlier request's, so a push never waits behind a parked pull, and answers keep request order.
// At most kMaxQueued requests wait for their answer; the session reads no further until one goes.
#ifndef PSREC_PS_STREAM_SESSION_H_
#define PSREC_PS_STREAM_SESSION_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "grpcpp/alarm.h"
#include "grpcpp/grpcpp.h"
#include "proto/ps.pb.h"

namespace psrec {

class ParameterServerImpl;  // ps/server.h
class StreamSession;

// The open streams of one server, so that shutdown can end them. Thread-safe.
class StreamRegistry {
 public:
  // False once Shutdown has begun: the stream should end at once.
  bool Add(StreamSession* session);
  void Remove(StreamSession* session);
  // Cancels every open stream, and every one added later.
  void Shutdown();

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<StreamSession*> sessions_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// Owned by itself: created by ParameterServerImpl::Stream, deleted when gRPC says the stream is
// done and nothing else refers to it. Every method is called by gRPC, the barrier (a wake-up), the
// alarm or the registry, in any order and on any thread.
class StreamSession final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Answers waiting to be written, at most, before the session stops reading requests.
  static constexpr size_t kMaxQueued = 8;

  StreamSession(ParameterServerImpl* server, StreamRegistry* registry,
                grpc::CallbackServerContext* context);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Asks gRPC to cancel the stream (shutdown), unless it has already finished. The session ends
  // through OnCancel. The caller holds a reference (Ref).
  void Cancel();
  void Ref();
  void Unref();

 private:
  // A request between its arrival and its answer.
  struct Pending {
    std::unique_ptr<StreamRequest> request;
    absl::Status status;  // of its admission; not OK: the answer
    absl::Time deadline;  // of a SYNC wait
    absl::Time arrived;   // for the request-latency metric
  };
  // gRPC calls to make once mu_ is released: a reaction may run before such a call returns.
  struct Actions {
    bool read = false;
    const grpc::ByteBuffer* write = nullptr;
    bool finish = false;
    grpc::Status finish_status;
    std::shared_ptr<grpc::Alarm> cancel_alarm;
  };

  ~StreamSession() override = default;

  // Answers queued requests, front first, until one must wait or none is left.
  void Advance() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The answer to the front request, or false when its pull was parked.
  bool AnswerFront(grpc::ByteBuffer* answer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets the alarm of the front request, parked under parked_id_, for `deadline`.
  void SetAlarm(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the front request's park, and queues its answer (none once cancelled).
  void Unpark(const absl::Status& status, Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The barrier's wake-up of the parked front request, and the alarm at its deadline.
  void Wake(uint64_t park, const absl::Status& status);
  void OnAlarm(uint64_t park, bool fired);
  // What to start next: a write, a read, or the end of the stream.
  void Schedule(Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Perform(const Actions& actions);
  std::unique_ptr<StreamRequest> NewRequest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records an answered request in the ps metrics (ps/request_metrics.h: rpc="StreamPull" or
  // "StreamPush"), from its arrival: a stream is one call to gRPC, each request is one here.
  void Answered(const Pending& pending, const absl::Status& status);

  ParameterServerImpl* const server_;
  StreamRegistry* const registry_;
  grpc::CallbackServerContext* const context_;
  const std::string peer_;
  const Histogram pull_seconds_;
  const Histogram push_seconds_;

  absl::Mutex mu_;
  grpc::ByteBuffer incoming_;  // the read in flight's target; used by OnReadDone alone
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::ByteBuffer> answers_ ABSL_GUARDED_BY(mu_);  // front is being written if writing_
  std::vector<std::unique_ptr<StreamRequest>> spare_ ABSL_GUARDED_BY(mu_);  // reused messages
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;  // the client closed its side, or it failed
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelling_ ABSL_GUARDED_BY(mu_) = false;  // Cancel's TryCancel is under way: no Finish
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool parked_ ABSL_GUARDED_BY(mu_) = false;     // the front request waits in the barrier
  uint64_t parks_ ABSL_GUARDED_BY(mu_) = 0;      // parks so far: the last one's number
  uint64_t parked_id_ ABSL_GUARDED_BY(mu_) = 0;  // the barrier's id of the park in place
  // The parked front request's deadline; shared with Perform, which cancels it outside mu_.
  std::shared_ptr<grpc::Alarm> alarm_ ABSL_GUARDED_BY(mu_);
  // The reactor's own reference, plus one per alarm set and per registry call in progress.
  int refs_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace psrec

#endif  // PSREC_PS_STREAM_SESSION_H_
