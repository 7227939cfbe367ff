#include "coordinator/schedule.h"

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace psrec {
namespace {

using ::testing::ElementsAre;

TEST(PlanEpochTest, OneWorkerNumbersStepsAsTheInProcessTrainer) {
  // 1000 rows in batches of 64: 16 batches an epoch, the last one short.
  for (uint32_t epoch : {0u, 1u, 7u}) {
    const std::vector<Partition> plan = PlanEpoch(1000, 1, 64, epoch);
    ASSERT_EQ(plan.size(), 1u);
    EXPECT_EQ(plan[0].begin, 0u);
    EXPECT_EQ(plan[0].end, 1000u);
    EXPECT_EQ(plan[0].first_step, epoch * 16u);
    EXPECT_EQ(plan[0].first_clock, epoch * 16u);
    EXPECT_EQ(plan[0].num_clocks, 16u);
  }
}

TEST(PlanEpochTest, PartitionsCoverEveryRowOnceWithDistinctSteps) {
  const std::vector<Partition> plan = PlanEpoch(1001, 3, 100, 2);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].begin, 0u);
  EXPECT_EQ(plan[0].end, plan[1].begin);
  EXPECT_EQ(plan[1].end, plan[2].begin);
  EXPECT_EQ(plan[2].end, 1001u);
  // 333, 334 and 334 rows: 4 batches each, 12 an epoch; steps run on across partitions.
  std::vector<uint64_t> first_steps;
  for (const Partition& p : plan) {
    first_steps.push_back(p.first_step);
    EXPECT_EQ(p.first_clock, 2u * 4);  // clocks are shared by the workers of an epoch
    EXPECT_EQ(p.num_clocks, 4u);
  }
  EXPECT_THAT(first_steps, ElementsAre(24, 28, 32));
}

TEST(PlanEpochTest, ShortPartitionsStillCountEveryClock) {
  // 5 rows over 3 workers in batches of 2: 1, 2 and 2 rows -> 1 batch each.
  const std::vector<Partition> plan = PlanEpoch(5, 3, 2, 0);
  for (const Partition& p : plan) EXPECT_EQ(p.num_clocks, 1u);
  // 3 rows over 2 workers in batches of 1: 1 and 2 batches; both push 2 clocks.
  const std::vector<Partition> uneven = PlanEpoch(3, 2, 1, 0);
  EXPECT_EQ(uneven[0].end - uneven[0].begin, 1u);
  EXPECT_EQ(uneven[1].end - uneven[1].begin, 2u);
  EXPECT_EQ(uneven[0].num_clocks, 2u);
  EXPECT_EQ(uneven[1].num_clocks, 2u);
}

// 8 rows in batches of 2 over workers 0 and 1, in generation 1: 2 clocks an epoch.
Schedule TwoWorkers(uint32_t staleness = 0) {
  Schedule s(8, 2, staleness);
  s.AddWorker(0);
  s.AddWorker(1);
  EXPECT_EQ(s.NewGeneration({0, 1}), 1u);
  return s;
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
  report.set_examples(work.end() - work.begin());
  report.set_loss_sum(0.5 * static_cast<double>(work.end() - work.begin()));
  return report;
}

TEST(ScheduleTest, AMemberIsHandedItsPartitionUntilItReportsIt) {
  Schedule s = TwoWorkers();
  EXPECT_FALSE(s.HasAnswer(0));  // between epochs
  EXPECT_EQ(Ask(s, 0).kind(), WorkAssignment::WAIT);
  s.StartEpoch(3);
  ASSERT_TRUE(s.HasAnswer(0));
  const WorkAssignment work = Ask(s, 0);
  EXPECT_EQ(work.kind(), WorkAssignment::TRAIN);
  EXPECT_EQ(work.epoch(), 3u);
  EXPECT_EQ(work.begin(), 0u);
  EXPECT_EQ(work.end(), 4u);
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
  EXPECT_EQ(other.begin(), 4u);
  EXPECT_EQ(other.end(), 8u);
  ASSERT_TRUE(s.Report(ReportOf(other, 1)).ok());
  EXPECT_TRUE(s.AllReported());
  const TrainStats stats = s.EndEpoch();
  EXPECT_EQ(stats.examples, 8u);
  EXPECT_DOUBLE_EQ(stats.mean_loss(), 0.5);
}

TEST(ScheduleTest, AReportOfAnythingButTheRunningAssignmentIsRefused) {
  Schedule s = TwoWorkers();
  s.StartEpoch(0);
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
  EXPECT_EQ(unexpected.message(), "unexpected report from worker 1 for epoch 0 (current epoch 0)");
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Report(ReportOf(work, 5))));
  // The epoch ended in trouble and a rollback is under way: the report would count for nothing.
  s.EndEpoch();
  EXPECT_TRUE(absl::IsAborted(s.Report(ReportOf(work, 0))));
}

TEST(ScheduleTest, TheSspClockHoldsAWorkerWithinStalenessOfTheSlowestMember) {
  Schedule s = TwoWorkers(/*staleness=*/1);
  s.AddWorker(2);  // registered, not a member: its clock holds nobody back
  s.StartEpoch(0);
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
  s.StartEpoch(0);
  EXPECT_EQ(Ask(s, 0).first_clock(), 0u);
  EXPECT_EQ(s.first_clock(), 2u);
  s.SetTrouble("worker 1 lost");
  s.EndEpoch();
  EXPECT_EQ(s.NewGeneration({0}), 2u);
  EXPECT_EQ(s.trouble(), "");
  s.StartEpoch(0);
  const WorkAssignment again = Ask(s, 0);
  EXPECT_EQ(again.generation(), 2u);
  EXPECT_EQ(again.first_clock(), 2u);
  EXPECT_EQ(again.first_step(), 0u);  // the same steps: the same dropout as the first try
  EXPECT_EQ(again.end(), 8u);         // every row, by the one member left
}

TEST(ScheduleTest, TroubleHandsOutNothingAndKeepsItsFirstReason) {
  Schedule s = TwoWorkers();
  s.StartEpoch(0);
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
  s.StartEpoch(0);
  EXPECT_TRUE(s.OwesReport(0));
  EXPECT_TRUE(s.OwesReport(1));
  EXPECT_FALSE(s.OwesReport(2));
  ASSERT_TRUE(s.Report(ReportOf(Ask(s, 0), 0)).ok());
  EXPECT_FALSE(s.OwesReport(0));
}

TEST(ScheduleTest, AReplacementIsNotHandedWhatItsPredecessorTrained) {
  Schedule s = TwoWorkers();
  s.StartEpoch(0);
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
  s.StartEpoch(0);
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
