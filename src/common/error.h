#pragma once
// The one exception type the library throws for bad input; main() turns it into a message
// and exit code 2. The message already holds the context (file, line, key, value).
#include <stdexcept>
#include <string>

namespace focaldet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws Error(message) when `ok` is false. For checks on user input, not internal invariants.
void check(bool ok, const std::string& message);

}  // namespace focaldet
