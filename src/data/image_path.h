#pragma once
// The rule for an image's file_name, shared by the COCO reader (read_coco) and the VOC
// converter (convert_voc), so that convert refuses exactly the names the reader would.
#include <filesystem>
#include <string>

namespace focaldet::data {

// Why `file_name` cannot name a file under an image root: "" when it can, else the reason,
// worded to follow the name ("is absolute; ...", "escapes the image root ('..')") or, for an
// empty name, to stand alone ("is empty"). '..' components or an absolute path would read
// files outside the image root; backslashes count as separators too ("..\..\x", "\x"), since
// Windows-made annotations carry them and a reader on Windows would follow them.
inline std::string image_path_problem(const std::string& file_name) {
  if (file_name.empty()) return "is empty";
  const std::filesystem::path p(file_name);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory() || file_name[0] == '\\') {
    return "is absolute; it must be relative to the image root";
  }
  for (const std::filesystem::path& part : p) {
    if (part == "..") return "escapes the image root ('..')";
  }
  if (file_name.find("\\..") != std::string::npos || file_name.find("..\\") != std::string::npos) {
    return "escapes the image root ('..')";
  }
  return "";
}

}  // namespace focaldet::data
