#pragma once
// Whole-file writes that a crash never leaves half done: write a temp file beside the target,
// flush it, then rename it over the target.
#include <string>
#include <string_view>

namespace focaldet::eval {

// Throws focaldet::Error naming the path when the file cannot be written.
void write_file_atomic(const std::string& path, std::string_view contents);

}  // namespace focaldet::eval
