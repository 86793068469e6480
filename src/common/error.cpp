#include "common/error.h"

namespace focaldet {

void check(bool ok, const std::string& message) {
  if (!ok) throw Error(message);
}

}  // namespace focaldet
