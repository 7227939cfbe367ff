#include "common/security.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/files.h"
#include "common/log.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/client_interceptor.h"

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate (chain) of this role, presented to every peer for mutual TLS. Give "
          "--tls_cert, --tls_key and --tls_ca together, or none of them (insecure). A server's "
          "certificate must name the host its peers dial (DNS or IP subject alt name).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificate(s): servers accept only clients whose certificate one of them "
          "signed, and clients only such servers.");
ABSL_FLAG(
    std::string, auth_token_file, "",
    "File holding a shared secret (surrounding whitespace ignored). Every RPC carries it, and "
    "a server rejects one without it as UNAUTHENTICATED. Without TLS it travels in clear "
    "text.");

namespace psrec {
namespace {

struct Settings {
  bool tls = false;
  std::string cert_pem, key_pem, ca_pem;
  std::string token;  // empty: no token check
};

struct State {
  absl::Mutex mu;
  std::shared_ptr<const Settings> settings ABSL_GUARDED_BY(mu);  // null until the first Init
};

State& GlobalState() {
  static auto* state = new State;
  return *state;
}

bool AnyFlagSet() {
  return !absl::GetFlag(FLAGS_tls_cert).empty() || !absl::GetFlag(FLAGS_tls_key).empty() ||
         !absl::GetFlag(FLAGS_tls_ca).empty() || !absl::GetFlag(FLAGS_auth_token_file).empty();
}

std::shared_ptr<const Settings> CurrentSettings() {
  State& state = GlobalState();
  absl::MutexLock lock(&state.mu);
  if (state.settings == nullptr) {
    PSREC_CHECK(!AnyFlagSet()) << "security flags are set but InitSecurityFromFlags() has not "
                                  "succeeded";
    state.settings = std::make_shared<const Settings>();
  }
  return state.settings;
}

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFileToString(path);
  if (!contents.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", contents.status().message()));
  }
  return contents;
}

// A certificate or key file must at least be PEM; gRPC would otherwise fail only at the first
// connection, far from the flag.
absl::StatusOr<std::string> ReadPemFlag(absl::string_view flag, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFlagFile(flag, path);
  if (pem.ok() && !absl::StrContains(*pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", path, ": not PEM (no -----BEGIN line)"));
  }
  return pem;
}

absl::Status ReadTlsFlags(Settings* settings) {
  const std::pair<const char*, std::string> flags[] = {
      {"tls_cert", absl::GetFlag(FLAGS_tls_cert)},
      {"tls_key", absl::GetFlag(FLAGS_tls_key)},
      {"tls_ca", absl::GetFlag(FLAGS_tls_ca)},
  };
  std::vector<std::string> given, missing;
  for (const auto& [name, path] : flags) {
    if (path.empty()) {
      missing.push_back(absl::StrCat("--", name));
    } else {
      given.push_back(absl::StrCat("--", name, "=", path));
    }
  }
  if (given.empty()) return absl::OkStatus();
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        absl::StrJoin(given, " and "), " given without ", absl::StrJoin(missing, " and "),
        ": mutual TLS needs --tls_cert, --tls_key and --tls_ca together"));
  }
  std::string* targets[] = {&settings->cert_pem, &settings->key_pem, &settings->ca_pem};
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::string> pem = ReadPemFlag(flags[i].first, flags[i].second);
    if (!pem.ok()) return pem.status();
    *targets[i] = std::move(pem).value();
  }
  settings->tls = true;
  return absl::OkStatus();
}

absl::Status ReadTokenFlag(Settings* settings) {
  const std::string path = absl::GetFlag(FLAGS_auth_token_file);
  if (path.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> contents = ReadFlagFile("auth_token_file", path);
  if (!contents.ok()) return contents.status();
  const absl::string_view token = absl::StripAsciiWhitespace(*contents);
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--auth_token_file=", path, " is empty"));
  }
  // It travels as an HTTP/2 header value.
  for (const char c : token) {
    if (c < '!' || c > '~') {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth_token_file=", path,
                       ": the token must be printable ASCII without spaces or line breaks"));
    }
  }
  settings->token = std::string(token);
  return absl::OkStatus();
}

constexpr char kAuthorizationKey[] = "authorization";

std::string BearerHeader(absl::string_view token) { return absl::StrCat("Bearer ", token); }

// Takes time that depends on the length of `expected` only, not on where `given` differs from it.
bool ConstantTimeEquals(absl::string_view given, absl::string_view expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const char g = i < given.size() ? given[i] : 0;
    diff |= static_cast<unsigned char>(g ^ expected[i]);
  }
  return diff == 0;
}

absl::string_view SliceView(const grpc_slice& slice) {
  return absl::string_view(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)),
                           GRPC_SLICE_LENGTH(slice));
}

// The auth context holds the connection's verified identity, not its address: see security.h.
std::string DescribePeer(const grpc_auth_context* context) {
  std::string subject;
  std::vector<std::string> names;
  grpc_auth_property_iterator it = grpc_auth_context_property_iterator(context);
  while (const grpc_auth_property* property = grpc_auth_property_iterator_next(&it)) {
    const absl::string_view value(property->value, property->value_length);
    if (std::strcmp(property->name, GRPC_X509_SUBJECT_PROPERTY_NAME) == 0) {
      subject = std::string(value);
    } else if (std::strcmp(property->name, GRPC_X509_SAN_PROPERTY_NAME) == 0) {
      names.emplace_back(value);
    }
  }
  if (subject.empty()) return "a plaintext client (address unknown to gRPC's auth hook)";
  return absl::StrCat("the TLS client '", subject, "' (", absl::StrJoin(names, ", "), ")");
}

// Runs in gRPC's server auth filter, for every call, before the call reaches any service.
void CheckToken(void* state, grpc_auth_context* context, const grpc_metadata* metadata,
                size_t num_metadata, grpc_process_auth_metadata_done_cb done, void* user_data) {
  const std::string& expected = *static_cast<const std::string*>(state);
  const grpc_metadata* token = nullptr;
  absl::string_view method = "(no method)";
  for (size_t i = 0; i < num_metadata; ++i) {
    const absl::string_view key = SliceView(metadata[i].key);
    if (key == kAuthorizationKey && token == nullptr) token = &metadata[i];
    if (key == ":path") method = SliceView(metadata[i].value);
  }
  if (token != nullptr && ConstantTimeEquals(SliceView(token->value), expected)) {
    // Consumed: the services never see the secret, so they cannot log it.
    done(user_data, token, 1, nullptr, 0, GRPC_STATUS_OK, nullptr);
    return;
  }
  PSREC_LOG(WARNING) << "UNAUTHENTICATED: rejected " << method << " from " << DescribePeer(context)
                     << ": " << (token == nullptr ? "no auth token" : "wrong auth token");
  done(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_UNAUTHENTICATED,
       "missing or wrong auth token");
}

void DestroyToken(void* state) { delete static_cast<std::string*>(state); }

// The server side of both TLS and the token check. gRPC's own C++ credentials take a token check
// only under TLS (InsecureServerCredentials asserts), while its C core runs one on plaintext
// connections too; so this builds the same core credentials as grpc::SslServerCredentials and
// grpc::InsecureServerCredentials do, and adds the check.
class PeerServerCredentials final : public grpc::ServerCredentials {
 public:
  explicit PeerServerCredentials(std::shared_ptr<const Settings> settings)
      : settings_(std::move(settings)) {}

  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {
    PSREC_LOG(FATAL) << "psrec's server credentials take their token check from AddAuthCheck()";
  }

  // Called by AddAuthCheck's option while the server is being built, before AddPortToServer.
  void RequireToken(const std::string& token) { bearer_ = BearerHeader(token); }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    grpc_server_credentials* creds = nullptr;
    if (settings_->tls) {
      grpc_ssl_pem_key_cert_pair pair = {settings_->key_pem.c_str(), settings_->cert_pem.c_str()};
      creds = grpc_ssl_server_credentials_create_ex(
          settings_->ca_pem.c_str(), &pair, 1,
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, nullptr);
    } else {
      creds = grpc_insecure_server_credentials_create();
    }
    if (!bearer_.empty()) {
      // The core credentials own the state from here and free it with DestroyToken.
      grpc_server_credentials_set_auth_metadata_processor(
          creds,
          grpc_auth_metadata_processor{&CheckToken, &DestroyToken, new std::string(bearer_)});
    }
    const int port = grpc_server_add_http2_port(server, addr.c_str(), creds);
    grpc_server_credentials_release(creds);
    return port;
  }

  const std::shared_ptr<const Settings> settings_;
  std::string bearer_;
};

// grpc::ServerBuilder shows its listening ports only to subclasses (the protected ports()). Naming
// that member through a subclass yields a member pointer that C++ lets us apply to any builder.
class BuilderPorts : public grpc::ServerBuilder {
 public:
  static std::vector<std::shared_ptr<grpc::ServerCredentials>> Credentials(
      grpc::ServerBuilder* builder) {
    std::vector<Port> (grpc::ServerBuilder::*ports)() = &BuilderPorts::ports;
    std::vector<std::shared_ptr<grpc::ServerCredentials>> creds;
    for (const Port& port : (builder->*ports)()) creds.push_back(port.creds);
    return creds;
  }
};

// BuildAndStart applies its options before it adds the listening ports, so every port gets the
// check, however the calls that built the builder were ordered.
class AuthCheckOption final : public grpc::ServerBuilderOption {
 public:
  AuthCheckOption(grpc::ServerBuilder* builder, std::string token)
      : builder_(builder), token_(std::move(token)) {}

  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {
    for (const std::shared_ptr<grpc::ServerCredentials>& creds :
         BuilderPorts::Credentials(builder_)) {
      auto* ours = dynamic_cast<PeerServerCredentials*>(creds.get());
      PSREC_CHECK(ours != nullptr) << "AddAuthCheck: a listening port does not use "
                                      "psrec::ServerCredentials(), so it could not check the token";
      ours->RequireToken(token_);
    }
  }
  void UpdatePlugins(
      std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* /*plugins*/) override {}

 private:
  grpc::ServerBuilder* const builder_;  // owns this option
  const std::string token_;
};

// Call credentials would be simpler, but gRPC refuses to send them on a plaintext channel.
class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(std::shared_ptr<const std::string> bearer)
      : bearer_(std::move(bearer)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace(kAuthorizationKey, *bearer_);
    }
    methods->Proceed();
  }

 private:
  const std::shared_ptr<const std::string> bearer_;
};

class TokenInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(const std::string& token)
      : bearer_(std::make_shared<const std::string>(BearerHeader(token))) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* /*info*/) override {
    return new TokenInterceptor(bearer_);
  }

 private:
  const std::shared_ptr<const std::string> bearer_;
};

}  // namespace

absl::Status InitSecurityFromFlags() {
  auto settings = std::make_shared<Settings>();
  if (absl::Status s = ReadTlsFlags(settings.get()); !s.ok()) return s;
  if (absl::Status s = ReadTokenFlag(settings.get()); !s.ok()) return s;
  State& state = GlobalState();
  absl::MutexLock lock(&state.mu);
  state.settings = std::move(settings);
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials() {
  std::shared_ptr<const Settings> settings = CurrentSettings();
  if (!settings->tls && settings->token.empty()) return grpc::InsecureServerCredentials();
  return std::make_shared<PeerServerCredentials>(std::move(settings));
}

void AddAuthCheck(grpc::ServerBuilder* builder) {
  const std::shared_ptr<const Settings> settings = CurrentSettings();
  if (settings->token.empty()) return;
  builder->SetOption(std::make_unique<AuthCheckOption>(builder, settings->token));
}

std::shared_ptr<grpc::Channel> CreatePeerChannel(const std::string& address,
                                                 const grpc::ChannelArguments& args) {
  const std::shared_ptr<const Settings> settings = CurrentSettings();
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (settings->tls) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = settings->ca_pem;
    options.pem_private_key = settings->key_pem;
    options.pem_cert_chain = settings->cert_pem;
    creds = grpc::SslCredentials(options);
  }
  if (settings->token.empty()) return grpc::CreateCustomChannel(address, creds, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<TokenInterceptorFactory>(settings->token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, creds, args,
                                                                 std::move(interceptors));
}

std::vector<std::string> SecurityFlagsForChildren() {
  std::vector<std::string> flags;
  const std::pair<const char*, std::string> values[] = {
      {"tls_cert", absl::GetFlag(FLAGS_tls_cert)},
      {"tls_key", absl::GetFlag(FLAGS_tls_key)},
      {"tls_ca", absl::GetFlag(FLAGS_tls_ca)},
      {"auth_token_file", absl::GetFlag(FLAGS_auth_token_file)},
  };
  for (const auto& [name, value] : values) {
    if (!value.empty()) flags.push_back(absl::StrCat("--", name, "=", value));
  }
  return flags;
}

const char* SecurityFlagsFile() { return __FILE__; }

}  // namespace psrec
