#pragma once
// The per-anchor classification target codes, defined once: assign/ writes them, loss/ reads
// them. A target is a class index in [0, C) or one of these. No torch here, so the fused loss
// kernels and anything else can include it for free.
#include <cstdint>

namespace focaldet {

inline constexpr int64_t kBackground = -1;  // a negative: every class's target is 0
inline constexpr int64_t kIgnore = -2;      // neither positive nor negative: no loss, no gradient

}  // namespace focaldet
