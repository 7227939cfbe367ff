#include "coordinator/schedule.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace psrec {
namespace {

using ::testing::ElementsAre;

std::vector<Part> Plan(const std::vector<uint64_t>& rows, uint32_t batch, uint32_t epoch) {
  std::vector<Part> parts(rows.size());
  PlanTrainEpoch(rows, batch, epoch, &parts);
  return parts;
}

TEST(PlanTrainEpochTest, OneWorkerNumbersStepsAsTheInProcessTrainer) {
  // 1000 rows in batches of 64: 16 batches an epoch, the last one short.
  for (uint32_t epoch : {0u, 1u, 7u}) {
    const std::vector<Part> plan = Plan({1000}, 64, epoch);
    EXPECT_EQ(plan[0].first_step, epoch * 16u);
    EXPECT_EQ(plan[0].num_clocks, 16u);
  }
}

TEST(PlanTrainEpochTest, StepsRunOnAcrossMembersAndClocksAreShared) {
  // 333, 334 and 334 rows: 4 batches each, 12 an epoch.
  const std::vector<Part> plan = Plan({333, 334, 334}, 100, 2);
  std::vector<uint64_t> first_steps;
  for (const Part& p : plan) {
    first_steps.push_back(p.first_step);
    EXPECT_EQ(p.num_clocks, 4u);
  }
  EXPECT_THAT(first_steps, ElementsAre(24, 28, 32));
  // 1 and 2 batches: both push 2 clocks; a member with no rows pushes them all empty.
  for (const Part& p : Plan({1, 2, 0}, 1, 0)) EXPECT_EQ(p.num_clocks, 2u);
}

TEST(AssignSharesTest, DealsEveryShareOnceAndEvensTheRowsOut) {
  const std::vector<uint64_t> rows = {50, 10, 40, 30, 20, 10};
  EXPECT_THAT(AssignShares(rows, 1), ElementsAre(ElementsAre(0, 1, 2, 3, 4, 5)));
  // Largest first, each to the lightest member: 50+10, 40+10 and 30+20 of 160.
  EXPECT_THAT(AssignShares(rows, 3),
              ElementsAre(ElementsAre(0, 5), ElementsAre(1, 2), ElementsAre(3, 4)));
  EXPECT_THAT(AssignShares(rows, 2), ElementsAre(ElementsAre(0, 1, 4), ElementsAre(2, 3, 5)));
  // More members than shares: some hold none.
  EXPECT_THAT(AssignShares({5, 7}, 3), ElementsAre(ElementsAre(1), ElementsAre(0), ElementsAre()));
  EXPECT_EQ(AssignShares(rows, 2), AssignShares(rows, 2));  // a function of its arguments
}

// Workers 0 and 1, in generation 1.
Schedule TwoWorkers(uint32_t staleness = 0) {
  Schedule s(staleness);
  s.AddWorker(0);
  s.AddWorker(1);
  EXPECT_EQ(s.NewGeneration({0, 1}), 1u);
  return s;
}

// Epoch `epoch` of 8 rows in two shares of 4, batches of 2, over the members: 2 clocks an epoch
// with two members.
void StartEpoch(Schedule& s, uint32_t epoch) {
  const size_t members = s.members().size();
  const std::vector<std::vector<uint32_t>> shares = AssignShares({4, 4}, members);
  std::vector<Part> parts(members);
  std::vector<uint64_t> rows(members);
  for (size_t k = 0; k < members; ++k) {
    parts[k].shares = shares[k];
    rows[k] = 4 * shares[k].size();
  }
  PlanTrainEpoch(rows, 2, epoch, &parts);
  TaskSpec spec;
  spec.kind = WorkAssignment::TRAIN;
  spec.epoch = epoch;
  spec.rating_offset = 3.5f;
  s.StartTask(spec, std::move(parts));
}

WorkAssignment Ask(Schedule& s, uint32_t id) {
  WorkAssignment work;
  s.Answer(id, &work);
  return work;
}

ReportRequest ReportOf(const WorkAssignment& work, uint32_t id) {
  ReportRequest report;
  report.set_worker_id(id);
  report.set_epoch(work.epoch());
  report.set_generation(work.generation());
  report.set_task(work.task());
  report.set_examples(4 * work.shares_size());
  return report;
}

TEST(ScheduleTest, AMemberIsHandedItsPartUntilItReportsIt) {
  Schedule s = TwoWorkers();
  EXPECT_FALSE(s.HasAnswer(0));  // between tasks
  EXPECT_EQ(Ask(s, 0).kind(), WorkAssignment::WAIT);
  StartEpoch(s, 3);
  ASSERT_TRUE(s.HasAnswer(0));
  const WorkAssignment work = Ask(s, 0);
  EXPECT_EQ(work.kind(), WorkAssignment::TRAIN);
  EXPECT_EQ(work.epoch(), 3u);
  EXPECT_EQ(work.task(), 1u);
  EXPECT_THAT(work.shares(), ElementsAre(0));
  EXPECT_EQ(work.rating_offset(), 3.5f);
  EXPECT_EQ(work.first_step(), 3u * 4);
  EXPECT_EQ(work.first_clock(), 0u);  // the job's first epoch planned, whatever its number
  EXPECT_EQ(work.num_clocks(), 2u);
  EXPECT_EQ(work.generation(), 1u);
  // The answer was lost: the same partition again.
  EXPECT_EQ(Ask(s, 0).SerializeAsString(), work.SerializeAsString());
  ASSERT_TRUE(s.Report(ReportOf(work, 0)).ok());
  EXPECT_FALSE(s.HasAnswer(0));
  EXPECT_FALSE(s.AllReported());
  // A retry whose answer was lost is OK and counted once.
  ASSERT_TRUE(s.Report(ReportOf(work, 0)).ok());
  const WorkAssignment other = Ask(s, 1);
  EXPECT_THAT(other.shares(), ElementsAre(1));
  EXPECT_EQ(other.first_step(), 3u * 4 + 2);
  ASSERT_TRUE(s.Report(ReportOf(other, 1)).ok());
  EXPECT_TRUE(s.AllReported());
  // The reports, in member order, whatever order they came in.
  const std::vector<ReportRequest> reports = s.EndTask();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].worker_id(), 0u);
  EXPECT_EQ(reports[1].worker_id(), 1u);
  EXPECT_EQ(reports[0].examples() + reports[1].examples(), 8u);
}

TEST(ScheduleTest, EveryKindOfTaskCarriesWhatItNeeds) {
  Schedule s = TwoWorkers();
  TaskSpec spec;
  spec.kind = WorkAssignment::COUNT_TIMES;
  spec.ranges.emplace_back().set_count(16);
  s.StartTask(spec, {Part{{0, 2}}, Part{{1}}});
  const WorkAssignment count = Ask(s, 0);
  EXPECT_EQ(count.kind(), WorkAssignment::COUNT_TIMES);
  EXPECT_THAT(count.shares(), ElementsAre(0, 2));
  ASSERT_EQ(count.ranges_size(), 1);
  EXPECT_EQ(count.ranges(0).count(), 16u);
  EXPECT_EQ(count.num_clocks(), 0u);  // no clocks outside training
  ASSERT_TRUE(s.Report(ReportOf(count, 0)).ok());
  ASSERT_TRUE(s.Report(ReportOf(Ask(s, 1), 1)).ok());
  s.EndTask();
  EXPECT_EQ(s.first_clock(), 0u);
  spec = TaskSpec();
  spec.kind = WorkAssignment::SPLIT;
  spec.threshold = 1234.5;
  s.StartTask(spec, {Part{{0, 2}}, Part{{1}}});
  const WorkAssignment split = Ask(s, 1);
  EXPECT_EQ(split.kind(), WorkAssignment::SPLIT);
  EXPECT_EQ(split.threshold(), 1234.5);
  EXPECT_EQ(split.task(), 2u);
  // A retry of a report of the earlier task is answered OK and changes nothing; a report of this
  // task from a worker that was not handed it yet is refused.
  EXPECT_TRUE(s.Report(ReportOf(count, 0)).ok());
  EXPECT_FALSE(s.AllReported());
  ReportRequest early = ReportOf(split, 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Report(early)));
}

TEST(ScheduleTest, AReportOfAnythingButTheRunningAssignmentIsRefused) {
  Schedule s = TwoWorkers();
  StartEpoch(s, 0);
  const WorkAssignment work = Ask(s, 0);
  ReportRequest stale = ReportOf(work, 0);
  stale.set_generation(7);
  const absl::Status aborted = s.Report(stale);
  EXPECT_TRUE(absl::IsAborted(aborted)) << aborted;
  EXPECT_EQ(aborted.message(),
            "generation 7 is over; the job is at generation 1: ask for work again");
  // Worker 1 was never handed epoch 0; worker 5 does not exist.
  const absl::Status unexpected = s.Report(ReportOf(work, 1));
  EXPECT_TRUE(absl::IsFailedPrecondition(unexpected)) << unexpected;
  EXPECT_EQ(unexpected.message(), "unexpected report from worker 1 for task 1 (current task 1)");
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Report(ReportOf(work, 5))));
  // The epoch ended in trouble and a rollback is under way: the report would count for nothing.
  s.EndTask();
  EXPECT_TRUE(absl::IsAborted(s.Report(ReportOf(work, 0))));
}

TEST(ScheduleTest, TheSspClockHoldsAWorkerWithinStalenessOfTheSlowestMember) {
  Schedule s = TwoWorkers(/*staleness=*/1);
  s.AddWorker(2);  // registered, not a member: its clock holds nobody back
  StartEpoch(s, 0);
  Ask(s, 0);
  const WorkAssignment slow = Ask(s, 1);
  EXPECT_EQ(s.MinClock(), 0u);
  ASSERT_TRUE(s.EnterClock(0, 1, 1).ok());
  EXPECT_TRUE(s.ClockAllowed(1));
  EXPECT_FALSE(s.ClockAllowed(2));
  ASSERT_TRUE(s.EnterClock(1, 1, 1).ok());
  EXPECT_TRUE(s.ClockAllowed(2));
  // A report ends the worker's epoch: its last clock is done.
  ASSERT_TRUE(s.Report(ReportOf(slow, 1)).ok());
  EXPECT_EQ(s.MinClock(), 1u);  // worker 0's
  const absl::Status stale = s.EnterClock(0, 2, 0);
  EXPECT_TRUE(absl::IsAborted(stale)) << stale;
}

TEST(ScheduleTest, ARedoneEpochGetsClocksNoShardHasSeen) {
  Schedule s = TwoWorkers();
  EXPECT_EQ(s.first_clock(), 0u);
  StartEpoch(s, 0);
  EXPECT_EQ(Ask(s, 0).first_clock(), 0u);
  EXPECT_EQ(s.first_clock(), 2u);
  s.SetTrouble("worker 1 lost");
  s.EndTask();
  EXPECT_EQ(s.NewGeneration({0}), 2u);
  EXPECT_EQ(s.trouble(), "");
  StartEpoch(s, 0);
  const WorkAssignment again = Ask(s, 0);
  EXPECT_EQ(again.generation(), 2u);
  EXPECT_EQ(again.first_clock(), 2u);
  EXPECT_EQ(again.first_step(), 0u);  // the same steps: the same dropout as the first try
  EXPECT_THAT(again.shares(), ElementsAre(0, 1));  // every share, by the one member left
}

TEST(ScheduleTest, TroubleHandsOutNothingAndKeepsItsFirstReason) {
  Schedule s = TwoWorkers();
  StartEpoch(s, 0);
  s.GaveUp(0, /*failed_generation=*/0, "an older generation's failure");
  EXPECT_EQ(s.trouble(), "");
  EXPECT_TRUE(s.HasAnswer(0));
  s.GaveUp(0, 1, "Push to ps shard 1 failed");
  EXPECT_EQ(s.trouble(), "worker 0: Push to ps shard 1 failed");
  s.SetTrouble("");
  s.SetTrouble("worker 1 lost");
  EXPECT_EQ(s.trouble(), "worker 0: Push to ps shard 1 failed");
  EXPECT_FALSE(s.HasAnswer(0));
  EXPECT_FALSE(s.HasAnswer(1));
  EXPECT_EQ(Ask(s, 1).kind(), WorkAssignment::WAIT);
}

TEST(ScheduleTest, OnlyAMemberThatOwesItsReportMakesTroubleWhenLost) {
  Schedule s = TwoWorkers();
  s.AddWorker(2);
  EXPECT_FALSE(s.OwesReport(0));  // no epoch runs
  StartEpoch(s, 0);
  EXPECT_TRUE(s.OwesReport(0));
  EXPECT_TRUE(s.OwesReport(1));
  EXPECT_FALSE(s.OwesReport(2));
  ASSERT_TRUE(s.Report(ReportOf(Ask(s, 0), 0)).ok());
  EXPECT_FALSE(s.OwesReport(0));
}

TEST(ScheduleTest, AReplacementIsNotHandedWhatItsPredecessorTrained) {
  Schedule s = TwoWorkers();
  StartEpoch(s, 0);
  Ask(s, 0);
  ASSERT_TRUE(s.EnterClock(0, 1, 1).ok());
  ASSERT_TRUE(s.Report(ReportOf(Ask(s, 1), 1)).ok());
  EXPECT_EQ(s.MinClock(), 1u);
  s.AddWorker(1);  // worker 1 lost, and a replacement took its place
  EXPECT_FALSE(s.HasAnswer(1));
  EXPECT_FALSE(s.OwesReport(1));
  EXPECT_EQ(s.MinClock(), 0u);  // the replacement has run no clock yet
}

TEST(ScheduleTest, AfterTheJobEveryWorkerIsToldHowItEnded) {
  Schedule s = TwoWorkers();
  StartEpoch(s, 0);
  s.Finish(/*failed=*/false);
  EXPECT_TRUE(s.done());
  EXPECT_TRUE(s.HasAnswer(1));
  EXPECT_EQ(Ask(s, 1).kind(), WorkAssignment::DONE);
  Schedule failed = TwoWorkers();
  failed.Finish(/*failed=*/true);
  EXPECT_EQ(Ask(failed, 0).kind(), WorkAssignment::ABORTED);
}

}  // namespace
}  // namespace psrec
