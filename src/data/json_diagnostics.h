#pragma once
// Where and why a JSON text is broken, for error messages. The fast readers (simdjson) report
// only an error code; once they fail, this slow second pass (nlohmann's SAX parser, which keeps
// the byte offset) finds the line, column and the path of the value being read. Only ever run
// on the error path, so its speed does not matter.
#include <string>
#include <string_view>

namespace focaldet::data {

// A description such as
//   "line 3, column 17 (byte 52), in annotations[0].bbox: syntax error while parsing value -
//    invalid literal; last read: '[1, 2, x'"
// or "number '1e999' is not finite, in annotations[0].bbox[2]", or "integer '99999999999999999999'
// does not fit in 64 bits, in images[0].id"; empty when the text is valid JSON with only finite
// numbers and integers of at most 64 bits.
std::string diagnose_json(std::string_view text);

}  // namespace focaldet::data
