#include "common/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace psrec {
namespace {

// absl reports a flag's file with leading slashes stripped, so compare without them.
bool Owns(const Subcommand& sub, const absl::CommandLineFlag& flag) {
  const std::string file = flag.Filename();
  if (std::find(sub.shared_flags.begin(), sub.shared_flags.end(), flag.Name()) !=
      sub.shared_flags.end()) {
    return true;
  }
  return std::any_of(sub.flag_files.begin(), sub.flag_files.end(), [&](absl::string_view f) {
    return absl::StripPrefix(f.substr(f.find_first_not_of('/')), "./") == file;
  });
}

void PrintHelp(const Subcommand& sub) {
  std::printf("psrec %s: %s\n\n%s\n\nFlags:\n", sub.name, sub.summary, sub.usage);
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (Owns(sub, *flag)) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  for (const absl::CommandLineFlag* flag : flags) {
    std::printf("  --%s (default: \"%s\")\n", std::string(flag->Name()).c_str(),
                flag->DefaultValue().c_str());
    std::printf("      %s\n", flag->Help().c_str());
  }
}

// Checks every flag on the command line ("--name=v" or "--name v") against `sub` before absl parses
// them, so that a bad flag is a usage error (exit 2) that names the flag and the subcommand, rather
// than absl's exit 1. Returns the names of the flags given, or an error message. A boolean flag may
// also be given bare ("--resume", "--noresume"); every other flag takes a value.
absl::StatusOr<std::set<std::string>> CheckFlags(const Subcommand& sub,
                                                 const std::vector<char*>& args) {
  std::set<std::string> names;
  const auto all = absl::GetAllFlags();
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) continue;
    const size_t eq = arg.find('=');
    std::string name(arg.substr(0, eq));
    auto it = all.find(name);
    // A boolean flag given bare is set ("--resume") or cleared ("--noresume"), as absl has it.
    std::string bare_bool;
    if (eq == absl::string_view::npos) {
      if (it != all.end() && it->second->IsOfType<bool>()) {
        bare_bool = "true";
      } else if (absl::StartsWith(name, "no")) {
        auto negated = all.find(name.substr(2));
        if (negated != all.end() && negated->second->IsOfType<bool>()) {
          it = negated;
          name = name.substr(2);
          bare_bool = "false";
        }
      }
    }
    if (it == all.end() || !Owns(sub, *it->second)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", name, " is not a flag of this subcommand; see psrec ", sub.name, " --help"));
    }
    std::string value;
    if (!bare_bool.empty()) {
      value = bare_bool;
    } else if (eq != absl::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
    }
    std::string error;
    if (!it->second->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, "=", value, ": ", error));
    }
    names.insert(name);
  }
  return names;
}

}  // namespace

int RunSubcommand(const Subcommand& sub, int argc, char** argv) {
  // argv[0] "psrec", argv[1] the subcommand name; hand absl a program name plus the flags.
  std::vector<char*> args = {argv[0]};
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0 ||
        std::strcmp(argv[i], "--helpfull") == 0) {
      PrintHelp(sub);
      return 0;
    }
    args.push_back(argv[i]);
  }
  const absl::StatusOr<std::set<std::string>> named = CheckFlags(sub, args);
  if (!named.ok()) return Exit(sub.name, kExitUsage, named.status());
  absl::SetProgramUsageMessage(absl::StrCat("psrec ", sub.name, " [flags]; see --help"));
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  if (rest.size() > 1) {
    return Exit(
        sub.name, kExitUsage,
        absl::StrCat("unexpected argument '", rest[1], "'; see psrec ", sub.name, " --help"));
  }
  return sub.run(*named);
}

int Exit(const char* sub, int code, absl::string_view message) {
  std::fprintf(stderr, "psrec %s: %.*s\n", sub, static_cast<int>(message.size()), message.data());
  return code;
}

absl::Status FlagAtLeast(absl::string_view name, int64_t value, int64_t min) {
  if (value < min) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, "=", value, " must be at least ", min));
  }
  return absl::OkStatus();
}

absl::Status FlagAtLeast(absl::string_view name, absl::Duration value, absl::Duration min) {
  if (value < min) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, "=", absl::FormatDuration(value),
                                                   " must be at least ",
                                                   absl::FormatDuration(min)));
  }
  return absl::OkStatus();
}

void PrintTopLevelHelp(const std::vector<Subcommand>& subs) {
  std::printf(
      "psrec: a parameter-server trainer for MovieLens recommenders.\n\n"
      "Usage: psrec <subcommand> [flags]\n\nSubcommands:\n");
  for (const Subcommand& sub : subs) std::printf("  %-12s %s\n", sub.name, sub.summary);
  std::printf("\n'psrec <subcommand> --help' lists a subcommand's flags and their defaults.\n");
}

}  // namespace psrec
