#include "coordinator/membership.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/coordinator_test_util.h"

namespace psrec {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(RegistrationDifferencesTest, NamesEveryDifferingField) {
  const JobConfig mine = TestConfig();
  EXPECT_TRUE(RegistrationDifferences(mine, mine).empty());
  JobConfig theirs = mine;
  theirs.set_dim(32);
  FillTableSpecs(&theirs);
  theirs.set_consistency(ASYNC);
  EXPECT_THAT(RegistrationDifferences(mine, theirs),
              ElementsAre("dim: 30 vs 32", "tables: differ", "consistency: SYNC vs ASYNC"));
}

TEST(RegistrationDifferencesTest, IgnoresWhatTheCoordinatorFillsIn) {
  const JobConfig mine = TestConfig();
  JobConfig theirs = mine;
  theirs.set_data_dir("/elsewhere");
  theirs.clear_rating_offset();
  theirs.clear_num_shards();  // a worker started by hand learns the shards from the coordinator
  EXPECT_TRUE(RegistrationDifferences(mine, theirs).empty());
  theirs.set_num_shards(3);
  EXPECT_THAT(RegistrationDifferences(mine, theirs), ElementsAre("num_shards: 2 vs 3"));
}

// Membership takes the time as an argument, so leases are tested on a made-up clock.
const absl::Time kStart = absl::UnixEpoch() + absl::Hours(1);
const absl::Duration kLease = absl::Seconds(10);

// Workers "a" and "b" in both places, both ready, seen at kStart.
Membership TwoReady() {
  Membership m(2, kLease);
  m.Admit("a", kStart);
  m.Admit("b", kStart);
  m.SetReady(0);
  m.SetReady(1);
  return m;
}

TEST(MembershipTest, PlacesAreHandedOutInOrderUntilAllAreTaken) {
  Membership m(2, kLease);
  EXPECT_TRUE(m.HasPlace());
  EXPECT_EQ(m.Admit("a", kStart), 0u);
  EXPECT_TRUE(m.HasPlace());
  EXPECT_EQ(m.Admit("b", kStart), 1u);
  EXPECT_FALSE(m.HasPlace());
  EXPECT_EQ(m.size(), 2u);
}

TEST(MembershipTest, AnUnknownIdIsRefusedByName) {
  Membership m(2, kLease);
  m.Admit("a", kStart);
  EXPECT_TRUE(m.CheckIn(0, kStart).ok());
  const absl::Status unknown = m.CheckIn(1, kStart);
  EXPECT_TRUE(absl::IsInvalidArgument(unknown)) << unknown;
  EXPECT_EQ(unknown.message(), "worker id 1 is not registered");
}

TEST(MembershipTest, ReadyCountsOnlyWorkersThatAskedForWork) {
  Membership m(2, kLease);
  EXPECT_FALSE(m.AllReady());
  m.Admit("a", kStart);
  m.Admit("b", kStart);
  EXPECT_EQ(m.ReadyCount(), 0u);
  m.SetReady(1);
  EXPECT_FALSE(m.AllReady());
  EXPECT_THAT(m.LiveReady(), ElementsAre(1));
  m.SetReady(0);
  EXPECT_TRUE(m.AllReady());
  EXPECT_THAT(m.LiveReady(), ElementsAre(0, 1));
}

TEST(MembershipTest, AWorkerIsLostOnlyOnceItsLeaseHasRunOut) {
  Membership m = TwoReady();
  EXPECT_THAT(m.ExpireLeases(kStart + kLease), IsEmpty());  // exactly a lease: still alive
  ASSERT_TRUE(m.CheckIn(0, kStart + kLease).ok());
  const std::vector<Membership::Lost> lost = m.ExpireLeases(kStart + kLease + absl::Seconds(1));
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].id, 1u);
  EXPECT_EQ(lost[0].what, "worker 1 (b) lost: nothing from it for 11s");
  EXPECT_THAT(m.LiveReady(), ElementsAre(0));
  // Taken for lost once only.
  EXPECT_THAT(m.ExpireLeases(kStart + kLease + absl::Seconds(2)), IsEmpty());
}

TEST(MembershipTest, AWorkerWaitingInALongPollIsNotExpiredHoweverLongItWaits) {
  Membership m(1, kLease);
  m.Admit("a", kStart);
  m.SetReady(0);
  m.BeginWait(0);  // GetWork and Clock ...
  m.BeginWait(0);  // ... may both wait at once
  EXPECT_THAT(m.ExpireLeases(kStart + 100 * kLease), IsEmpty());
  m.EndWait(0, kStart + 100 * kLease);
  EXPECT_THAT(m.ExpireLeases(kStart + 200 * kLease), IsEmpty());  // still in the other wait
  // Its last wait ended when it was seen last: the lease runs from there.
  m.EndWait(0, kStart + 200 * kLease);
  EXPECT_THAT(m.ExpireLeases(kStart + 200 * kLease + kLease), IsEmpty());
  EXPECT_THAT(m.ExpireLeases(kStart + 201 * kLease + absl::Seconds(1)), SizeIs(1));
}

TEST(MembershipTest, APlaceFreedByAnExpiredLeaseGoesToTheNextWorkerUnderTheSameId) {
  Membership m = TwoReady();
  ASSERT_TRUE(m.CheckIn(1, kStart + kLease).ok());
  ASSERT_EQ(m.ExpireLeases(kStart + kLease + absl::Seconds(1)).size(), 1u);  // worker 0
  EXPECT_TRUE(m.HasPlace());
  EXPECT_EQ(m.Admit("replacement", kStart + kLease + absl::Seconds(1)), 0u);
  EXPECT_FALSE(m.HasPlace());
  EXPECT_EQ(m.size(), 2u);
  // The replacement starts over: it is not ready until it asks for work.
  EXPECT_THAT(m.LiveReady(), ElementsAre(1));
  EXPECT_FALSE(m.AllReady());
}

TEST(MembershipTest, ALostWorkerThatCallsAgainIsBackUnlessItsPlaceWasTaken) {
  Membership m(1, kLease);
  m.Admit("a", kStart);
  m.SetReady(0);
  ASSERT_EQ(m.ExpireLeases(kStart + 2 * kLease).size(), 1u);
  EXPECT_TRUE(m.HasPlace());
  EXPECT_THAT(m.LiveReady(), IsEmpty());
  ASSERT_TRUE(m.CheckIn(0, kStart + 2 * kLease).ok());
  EXPECT_FALSE(m.HasPlace());
  EXPECT_THAT(m.LiveReady(), ElementsAre(0));
}

TEST(MembershipTest, AWorkerThatLeftIsLostAtOnceAndForGood) {
  Membership m = TwoReady();
  absl::StatusOr<Membership::Lost> left = m.Leave(1, "SIGTERM");
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(left->id, 1u);
  EXPECT_EQ(left->what, "worker 1 (b) left: SIGTERM");
  EXPECT_THAT(m.LiveReady(), ElementsAre(0));
  EXPECT_TRUE(m.HasPlace());
  EXPECT_FALSE(m.AllToldDoneOrLost());  // worker 0 is live and not told
  // A call of its still under way when it left does not bring it back, as a lost lease's would.
  m.BeginWait(1);
  m.EndWait(1, kStart);
  const absl::Status back = m.CheckIn(1, kStart);
  EXPECT_TRUE(absl::IsFailedPrecondition(back)) << back;
  EXPECT_EQ(back.message(), "worker 1 (b) has left the job");
  EXPECT_THAT(m.LiveReady(), ElementsAre(0));
  EXPECT_THAT(m.ExpireLeases(kStart + 10 * kLease), SizeIs(1));  // worker 0; 1 is gone already
  // Its place goes to a replacement, which is a worker like any other.
  EXPECT_EQ(m.Admit("replacement", kStart), 0u);
  EXPECT_TRUE(m.CheckIn(0, kStart).ok());
  const absl::Status unknown = m.Leave(2, "SIGTERM").status();
  EXPECT_TRUE(absl::IsInvalidArgument(unknown)) << unknown;
}

TEST(MembershipTest, EveryWorkerToldDoneOrLost) {
  Membership m(2, kLease);
  EXPECT_TRUE(m.AllToldDoneOrLost());  // nobody came
  m.Admit("a", kStart);
  m.Admit("b", kStart);
  m.SetToldDone(0);
  EXPECT_FALSE(m.AllToldDoneOrLost());
  ASSERT_TRUE(m.CheckIn(0, kStart + kLease).ok());
  ASSERT_EQ(m.ExpireLeases(kStart + kLease + absl::Seconds(1)).size(), 1u);  // worker 1
  EXPECT_TRUE(m.AllToldDoneOrLost());
}

}  // namespace
}  // namespace psrec
