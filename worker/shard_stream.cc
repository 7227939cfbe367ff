#include "worker/shard_stream.h"

#include <algorithm>
#include <utility>

#include "common/log.h"

namespace psrec {

ShardStream::ShardStream(uint32_t shard, std::shared_ptr<grpc::Channel> channel,
                         grpc::CompletionQueue* cq)
    : shard_(shard), channel_(std::move(channel)), cq_(cq) {}

ShardStream::~ShardStream() {
  PSREC_CHECK(Quiet()) << "ShardStream destroyed with operations pending";
}

void ShardStream::Start() {
  context_ = std::make_unique<grpc::ClientContext>();
  // The initial metadata (and the token in it) goes out with the first request, in one write.
  context_->set_initial_metadata_corked(true);
  grpc::GenericStub stub(channel_);  // the call's context keeps the channel
  call_ = stub.PrepareCall(context_.get(), "/psrec.ParameterServer/Stream", cq_);
  call_->StartCall(nullptr);  // corked: no operation, so no completion
  broken_ = false;
  final_status_asked_ = false;
  failure_ = grpc::Status::OK;
  reading_ = true;
  call_->Read(&incoming_, MakeTag(shard_, kRead));
}

void ShardStream::Send(grpc::ByteBuffer request, absl::Time deadline) {
  if (call_ != nullptr && broken_) {
    PSREC_CHECK(Quiet()) << "Send on a stream still failing";
    call_.reset();
    context_.reset();
  }
  if (call_ == nullptr) Start();
  expected_.emplace_back();
  expected_.back().deadline = deadline;
  writes_.push_back(std::move(request));
  if (!writing_) WriteNext();
}

void ShardStream::WriteNext() {
  if (writes_.empty() || broken_) return;
  writing_ = true;
  call_->Write(writes_.front(), MakeTag(shard_, kWrite));
}

void ShardStream::OnEvent(Op op, bool ok) {
  switch (op) {
    case kRead:
      reading_ = false;
      if (!ok) {
        Broken();
        return;
      }
      if (answered_ == expected_.size()) {  // an answer to no request: the stream is corrupt
        failure_ = grpc::Status(grpc::StatusCode::INTERNAL, "an answer to no request");
        context_->TryCancel();
        Broken();
        return;
      }
      expected_[answered_].done = true;
      expected_[answered_].answer.Swap(&incoming_);  // ByteBuffer has no move assignment
      ++answered_;
      incoming_.Clear();
      if (!broken_) {
        reading_ = true;
        call_->Read(&incoming_, MakeTag(shard_, kRead));
      }
      return;
    case kWrite:
      writing_ = false;
      writes_.pop_front();
      if (!ok) {
        Broken();
        return;
      }
      WriteNext();
      return;
    case kFinish:
      finishing_ = false;
      if (failure_.ok()) {
        failure_ = final_status_.ok()
                       ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server ended the stream")
                       : final_status_;
      }
      FailOutstanding(failure_);
      return;
    case kUnary:
      break;
  }
  PSREC_CHECK(false) << "ShardStream given a completion of operation " << op;
}

void ShardStream::Broken() {
  if (!broken_) {
    broken_ = true;
    // Makes every pending operation complete; a status already received stays the call's.
    context_->TryCancel();
    writes_.erase(writes_.begin() + (writing_ ? 1 : 0), writes_.end());
  }
  if (reading_ || writing_ || finishing_ || call_ == nullptr) return;
  if (!final_status_asked_) {
    final_status_asked_ = true;
    finishing_ = true;
    call_->Finish(&final_status_, MakeTag(shard_, kFinish));
  }
}

void ShardStream::FailOutstanding(const grpc::Status& status) {
  for (size_t i = answered_; i < expected_.size(); ++i) {
    expected_[i].done = true;
    expected_[i].status = status;
  }
  answered_ = expected_.size();
}

grpc::Status ShardStream::TakeAnswer(size_t index, grpc::ByteBuffer* answer) {
  PSREC_CHECK(done(index)) << "TakeAnswer without an answer";
  // Answers come in order, so the answered requests are a prefix of expected_, and stay one.
  Expected taken = std::move(expected_[index]);
  expected_.erase(expected_.begin() + static_cast<std::ptrdiff_t>(index));
  --answered_;
  answer->Swap(&taken.answer);
  return taken.status;
}

absl::Time ShardStream::next_deadline() const {
  absl::Time next = absl::InfiniteFuture();
  for (size_t i = answered_; i < expected_.size(); ++i) {
    next = std::min(next, expected_[i].deadline);
  }
  return next;
}

void ShardStream::ExpireBefore(absl::Time now, const grpc::Status& status) {
  if (next_deadline() > now) return;
  Cancel(status);
}

void ShardStream::Cancel(const grpc::Status& status) {
  if (call_ == nullptr) {
    FailOutstanding(status);  // nothing sent: nothing can be outstanding, but be safe
    return;
  }
  if (failure_.ok() && !broken_) {
    failure_ = status.ok() ? grpc::Status::CANCELLED : status;
  }
  Broken();
}

}  // namespace psrec
