// PeerChannel against real gRPC servers on loopback, whose name a fake DNS server resolves: a peer
// made again under the same name at another address (127.0.0.2 instead of 127.0.0.1), as a
// Kubernetes pod is, and a peer whose name never resolves.
#include "common/rpc.h"

#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "proto/ps.grpc.pb.h"
#include "tests/fake_dns.h"
#include "tests/ops_test_util.h"

namespace psrec {
namespace {

using testing_util::FakeDns;
using testing_util::UnusedPort;

TEST(PeerChannelTest, FindsAPeerMadeAgainAtANewAddressUnderTheSameName) {
  FakeDns dns;
  ASSERT_GT(dns.port(), 0);
  const int port = UnusedPort();
  dns.Set("peer.test", "127.0.0.1");
  // A server serves at least one service; these answer UNIMPLEMENTED to every call.
  ParameterServer::Service first_service, second_service;
  absl::StatusOr<StartedServer> first = StartServer("127.0.0.1", port, {&first_service});
  ASSERT_TRUE(first.ok()) << first.status();
  PeerChannel peer(dns.Target("peer.test", port), QuickReconnect());
  ASSERT_TRUE(peer.WaitForConnected(absl::Now() + absl::Minutes(1)));
  EXPECT_EQ(peer.renewals(), 0);

  // The peer goes, and its name with it: the channel's resolver fails, and backs off (1 s, then
  // 1.6 s, 2.6 s, ...: after three failures the next try is at least 2 s away).
  dns.Set("peer.test", "");
  first->server->Shutdown(absl::ToChronoTime(absl::Now()));
  ASSERT_TRUE(dns.WaitForNotFound("peer.test", 3));
  EXPECT_FALSE(peer.Refresh());

  // Made again elsewhere under the same name: found on a new channel, which resolved it at once.
  absl::StatusOr<StartedServer> second = StartServer("127.0.0.2", port, {&second_service});
  ASSERT_TRUE(second.ok()) << second.status();
  dns.Set("peer.test", "127.0.0.2");
  EXPECT_TRUE(peer.WaitForConnected(absl::Now() + absl::Minutes(1)));
  EXPECT_GE(peer.renewals(), 1);
  second->server->Shutdown(absl::ToChronoTime(absl::Now()));
}

TEST(PeerChannelTest, APeerThatStaysAwayCostsANewChannelAtMostEverySecond) {
  FakeDns dns;
  ASSERT_GT(dns.port(), 0);
  PeerChannel peer(dns.Target("gone.test", UnusedPort()), QuickReconnect());
  const absl::Time start = absl::Now();
  EXPECT_FALSE(peer.WaitForConnected(start + absl::Seconds(3)));
  const absl::Duration waited = absl::Now() - start;
  EXPECT_GE(waited, absl::Seconds(3));
  // Each channel is given up once it has failed and lived PeerChannel::kMinAge.
  EXPECT_GE(peer.renewals(), 1);
  EXPECT_LE(peer.renewals(), waited / PeerChannel::kMinAge);
  EXPECT_GE(dns.NotFound("gone.test"), peer.renewals());
}

}  // namespace
}  // namespace psrec
