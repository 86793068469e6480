#pragma once
#include <string>

namespace focaldet::loss {

// How per-element losses become the returned tensor.
enum class Reduction {
  None,  // one value per element ([N, C] for sigmoid losses, [N] for softmax); ignored rows are 0
  Sum,   // scalar sum over every non-ignored element
  Mean,  // Sum divided by the number of non-ignored elements (anchors x classes for sigmoid)
};

// "none" | "sum" | "mean"; throws focaldet::Error naming the value otherwise.
Reduction parse_reduction(const std::string& name);
const char* to_string(Reduction r);

}  // namespace focaldet::loss
