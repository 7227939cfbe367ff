// Command-line plumbing shared by the subcommands: help text and parsing with absl flags.
#ifndef PSREC_COMMON_CLI_H_
#define PSREC_COMMON_CLI_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/generated_enum_reflection.h"

namespace psrec {

struct Subcommand {
  const char* name;
  const char* summary;  // one line
  const char* usage;    // a paragraph shown by `psrec NAME --help`
  // Source files whose ABSL_FLAGs belong to this subcommand (as __FILE__ gives them).
  std::vector<std::string> flag_files;
  int (*run)(const std::set<std::string>& specified_flags);
  // Flags defined in other files that this subcommand takes too, by name (`psrec synth` takes the
  // job's --seed).
  std::vector<std::string> shared_flags = {};
};

// Parses argv[2..] as the flags of `sub` and runs it. Handles --help (this subcommand's flags with
// their defaults and help), rejects flags that belong to other subcommands and positional
// arguments, and returns the exit code.
int RunSubcommand(const Subcommand& sub, int argc, char** argv);

// Every subcommand's exit status: 0 done, kExitFailed for a failure of input, I/O or a peer,
// kExitUsage for a bad flag or a config the user must fix.
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
// A role stopped by SIGTERM that should be restarted (ps) or replaced (worker): 128 + SIGTERM.
constexpr int kExitSigterm = 143;

// How a subcommand gives up: prints "psrec SUB: <message>" on stderr and returns `code`.
int Exit(const char* sub, int code, absl::string_view message);
inline int Exit(const char* sub, int code, const absl::Status& status) {
  return Exit(sub, code, status.message());
}

// A flag's lower bound: INVALID_ARGUMENT "--NAME=VALUE must be at least MIN" when `value` < `min`,
// else OK. Durations are written as absl::FormatDuration writes them ("100ms").
absl::Status FlagAtLeast(absl::string_view name, int64_t value, int64_t min);
absl::Status FlagAtLeast(absl::string_view name, absl::Duration value, absl::Duration min);

// Prints `psrec`'s own help: the subcommands and their summaries.
void PrintTopLevelHelp(const std::vector<Subcommand>& subs);

// Lower-case enum names as used on the command line: "seed_time", "mlp", "adam", ...
template <typename Enum>
std::string EnumFlagName(Enum value) {
  const auto* value_descriptor =
      google::protobuf::GetEnumDescriptor<Enum>()->FindValueByNumber(value);
  return value_descriptor == nullptr ? "unknown" : absl::AsciiStrToLower(value_descriptor->name());
}

}  // namespace psrec

#endif  // PSREC_COMMON_CLI_H_
