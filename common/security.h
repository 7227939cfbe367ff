// Who may talk to whom: mutual TLS between the roles and a shared token on every RPC.
//
//   --tls_cert, --tls_key, --tls_ca   all three or none. Servers require a client certificate
//                                     signed by --tls_ca; clients check the server's the same way.
//   --auth_token_file                 a shared secret; every RPC carries it as
//                                     "authorization: Bearer <token>" and a server checks it.
//
// With none of them set, servers and channels are insecure, as for loopback testing. Each role
// calls InitSecurityFromFlags() once at startup, then builds its servers with ServerCredentials()
// and AddAuthCheck(), and its channels with CreatePeerChannel(). The settings are process-wide
// because the flags are; every function here is thread-safe.
#ifndef PSREC_COMMON_SECURITY_H_
#define PSREC_COMMON_SECURITY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/channel_arguments.h"

// The flags above, for whoever sets them in-process (the tests).
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, auth_token_file);

namespace psrec {

// Reads the --tls_* and --auth_token_file files once and keeps them. Call at startup of every
// role; errors name the flag and the file. OK (and insecure) when none is set. On error the
// settings kept before stay. Using the functions below while a flag is set but no call has
// succeeded is a broken invariant (they abort), so that a role cannot forget it and run open.
absl::Status InitSecurityFromFlags();

// Credentials for a server: TLS requiring and verifying client certificates against --tls_ca when
// the TLS flags are set; insecure otherwise. A fresh object on every call.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials();

// Registers the token check on a server about to be built (no-op without --auth_token_file). Every
// RPC of every service on that server, gRPC's health service included, must then carry the token,
// or it fails UNAUTHENTICATED before any handler runs, and the rejection is logged with
// PSREC_LOG(WARNING) naming the peer and the method. Every listening port of `builder` must use
// ServerCredentials() (whenever they are added); BuildAndStart aborts otherwise.
//
// The peer named is the client certificate's subject under TLS. gRPC 1.51 gives a check that runs
// before the handlers no client address, so on a plaintext connection the log says so instead.
void AddAuthCheck(grpc::ServerBuilder* builder);

// A channel to a peer with the client side of the above: TLS with this role's cert/key and the CA,
// and the token attached to every call. `args` are extra channel arguments. Under TLS the server's
// certificate must name `address`'s host (a DNS or, for 127.0.0.1:PORT, an IP subject alt name).
std::shared_ptr<grpc::Channel> CreatePeerChannel(const std::string& address,
                                                 const grpc::ChannelArguments& args);

// "--tls_cert=...", ... for each flag that is set, to pass on to child processes.
std::vector<std::string> SecurityFlagsForChildren();

// __FILE__ of security.cc, so that --help can list these flags (see common/cli.h
// Subcommand.flag_files).
const char* SecurityFlagsFile();

}  // namespace psrec

#endif  // PSREC_COMMON_SECURITY_H_
