#include "loss/reduction.h"

#include "common/error.h"

namespace focaldet::loss {

Reduction parse_reduction(const std::string& name) {
  if (name == "none") return Reduction::None;
  if (name == "sum") return Reduction::Sum;
  if (name == "mean") return Reduction::Mean;
  throw Error("unknown reduction '" + name + "' (expected none, sum or mean)");
}

const char* to_string(Reduction r) {
  switch (r) {
    case Reduction::None:
      return "none";
    case Reduction::Sum:
      return "sum";
    case Reduction::Mean:
      return "mean";
  }
  return "?";
}

}  // namespace focaldet::loss
