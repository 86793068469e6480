#include "eval/results_json.h"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "data/json_diagnostics.h"

namespace focaldet::eval {
namespace {

namespace od = simdjson::ondemand;

// JSON text with at least SIMDJSON_PADDING readable bytes after `size` (capacity >= size +
// padding), as simdjson's parsers require.
struct JsonText {
  const char* data;
  std::size_t size;
  std::size_t capacity;
};

JsonText view(const simdjson::padded_string& s) {
  return {s.data(), s.size(), s.size() + simdjson::SIMDJSON_PADDING};
}

// A results file in memory: mapped (private, read-only) when the rest of its last page gives
// the padding, so the tens of MB of a results file are not copied; read into a padded string
// otherwise. writable() lets the two-halves parse change a byte in place (copy-on-write of
// one page; the file is never written).
class FileText {
 public:
  explicit FileText(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw Error("cannot read results " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      page_ = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
      const std::size_t size = static_cast<std::size_t>(st.st_size);
      const std::size_t mapped = (size + page_ - 1) / page_ * page_;
      if (mapped - size >= simdjson::SIMDJSON_PADDING) {
        void* p = ::mmap(nullptr, mapped, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (p != MAP_FAILED) {
          map_ = static_cast<char*>(p);
          mapped_ = mapped;
          text_ = {map_, size, mapped};
        }
      }
    }
    ::close(fd);
    if (map_ == nullptr) {
      if (auto error = simdjson::padded_string::load(path).get(copy_)) {
        throw Error("cannot read results " + path + ": " + simdjson::error_message(error));
      }
      text_ = view(copy_);
    }
    skip_byte_order_mark();
  }
  explicit FileText(std::string_view json) : copy_(json) {
    text_ = view(copy_);
    skip_byte_order_mark();
  }
  ~FileText() {
    if (map_ != nullptr) ::munmap(map_, mapped_);
  }
  FileText(const FileText&) = delete;
  FileText& operator=(const FileText&) = delete;

  const JsonText& text() const { return text_; }
  // The byte at `pos`, made writable; nullptr if that cannot be done.
  char* writable(std::size_t pos) {
    pos += skipped_;
    if (map_ == nullptr) return copy_.data() + pos;
    char* page_start = map_ + pos / page_ * page_;
    if (::mprotect(page_start, page_, PROT_READ | PROT_WRITE) != 0) return nullptr;
    return map_ + pos;
  }

 private:
  // A UTF-8 byte order mark (Windows editors write one) is not json: the text starts after it.
  void skip_byte_order_mark() {
    if (text_.size >= 3 && std::memcmp(text_.data, "\xEF\xBB\xBF", 3) == 0) {
      text_ = {text_.data + 3, text_.size - 3, text_.capacity - 3};
      skipped_ = 3;
    }
  }

  char* map_ = nullptr;
  std::size_t mapped_ = 0;
  std::size_t page_ = 4096;
  simdjson::padded_string copy_;
  JsonText text_{nullptr, 0, 0};
  std::size_t skipped_ = 0;  // bytes of a byte order mark before text_.data
};

// Where and why the text is malformed ("at the end of the input, line 1, column 80 (byte 79),
// in [1].bbox: ..."): simdjson's on-demand parser does not know where it stopped (its
// current_location() says byte 0 for a truncated file), so the slow diagnosis reads it again.
std::string malformed(const JsonText& text, simdjson::error_code error) {
  std::string where = data::diagnose_json(std::string_view(text.data, text.size));
  if (where.empty()) where = simdjson::error_message(error);
  return "not valid json: " + where;
}

std::string format_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

// The value's text without the whitespace simdjson leaves after it.
std::string_view token_of(od::value& value) {
  std::string_view raw = value.raw_json_token();
  while (!raw.empty() &&
         (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t')) {
    raw.remove_suffix(1);
  }
  return raw;
}

// simdjson 3.0.1 (Debian 12) reads long number literals wrong in on-demand mode: get_double
// gives 9.3e-05 for 0.50000000000000000000001 and get_number 0 for 9000000000000000000.0.
// Literals of more than kShortLiteral characters are read by std::from_chars instead (exact;
// rare, so the fast path is unchanged). Returns false when it cannot read `raw`.
constexpr std::size_t kShortLiteral = 18;
bool read_long_literal(std::string_view raw, double* v) {
  if (raw.empty() || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))) return false;
  const auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), *v);
  return ec == std::errc() && end == raw.data() + raw.size() && std::isfinite(*v);
}

class EntryReader {
 public:
  EntryReader(const std::string& origin, std::size_t index) : origin_(origin), index_(index) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(origin_ + ": detection " + std::to_string(index_) + ": " + what);
  }

  int64_t read_id(od::value value, const char* key) const {
    const std::string_view raw = token_of(value);
    double long_value = 0;
    if (raw.size() > kShortLiteral && read_long_literal(raw, &long_value)) {
      return integer_id(long_value, key, raw);
    }
    od::number number;
    if (value.get_number().get(number) != simdjson::SUCCESS) {
      // A number token that does not parse is an integer of more than 64 bits.
      if (!raw.empty() && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))) {
        fail(std::string("\"") + key + "\" " + std::string(raw.substr(0, 40)) +
             " is too large for a 64-bit id");
      }
      fail(std::string("\"") + key + "\" is not a number");
    }
    switch (number.get_number_type()) {
      case od::number_type::signed_integer:
        return number.get_int64();
      case od::number_type::unsigned_integer:
        fail(std::string("\"") + key + "\" " + std::to_string(number.get_uint64()) +
             " is too large for a 64-bit signed id");
      default:
        return integer_id(number.get_double(), key);
    }
  }

  // 7.0 reads as the id 7, as it does in Python (7.0 == 7 as a dict key).
  // `text`: the literal as written, for the message (empty: the value's shortest form).
  int64_t integer_id(double v, const char* key, std::string_view text = {}) const {
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) > 9.0e15) {
      const std::string shown = text.empty() ? format_double(v) : std::string(text.substr(0, 40));
      fail(std::string("\"") + key + "\" " + shown + " is too large for an id");
    }
    if (!std::isfinite(v) || v != std::floor(v)) {
      fail(std::string("\"") + key + "\" is not an integer");
    }
    return static_cast<int64_t>(v);
  }

  double read_number(od::value value, const char* what) const {
    double v = 0;
    if (const std::string_view raw = token_of(value);
        raw.size() > kShortLiteral && read_long_literal(raw, &v)) {
      return v;
    }
    if (value.get_double().get(v) != simdjson::SUCCESS || !std::isfinite(v)) {
      fail(std::string(what) + " is not a finite number");
    }
    return v;
  }

 private:
  const std::string& origin_;
  std::size_t index_;
};

std::vector<Detection> parse_list(const JsonText& text, const std::string& origin) {
  od::parser parser;
  od::document doc;
  if (auto error = parser.iterate(text.data, text.size, text.capacity).get(doc)) {
    throw Error(origin + ": " + malformed(text, error));
  }
  od::array list;
  if (auto error = doc.get_array().get(list)) {
    if (error == simdjson::INCORRECT_TYPE) {
      throw Error(origin + ": a results file is a json list of detections; this is not a list");
    }
    throw Error(origin + ": " + malformed(text, error));
  }
  std::vector<Detection> out;
  out.reserve(text.size / 96);  // ~100 bytes per entry in typical files
  std::size_t index = 0;
  for (auto element : list) {
    const EntryReader entry(origin, index);
    od::object object;
    if (auto error = element.get_object().get(object)) {
      if (error == simdjson::INCORRECT_TYPE) entry.fail("not a json object");
      entry.fail(malformed(text, error));
    }
    Detection d;
    bool has_image = false, has_category = false, has_bbox = false, has_score = false;
    for (auto field : object) {
      std::string_view key;
      if (auto error = field.unescaped_key().get(key)) {
        entry.fail(malformed(text, error));
      }
      od::value value;
      if (auto error = field.value().get(value)) {
        entry.fail(malformed(text, error));
      }
      if (key == "image_id") {
        d.image_id = entry.read_id(value, "image_id");
        has_image = true;
      } else if (key == "category_id") {
        d.category_id = entry.read_id(value, "category_id");
        has_category = true;
      } else if (key == "score") {
        d.score = entry.read_number(value, "\"score\"");
        has_score = true;
      } else if (key == "bbox") {
        od::array box;
        if (value.get_array().get(box) != simdjson::SUCCESS) {
          entry.fail("\"bbox\" is not a list [x, y, width, height]");
        }
        double xywh[4] = {0, 0, 0, 0};
        std::size_t n = 0;
        for (auto number : box) {
          od::value v;
          if (number.get(v) != simdjson::SUCCESS) entry.fail("\"bbox\" is not valid json");
          if (n < 4) xywh[n] = entry.read_number(v, "a \"bbox\" value");
          ++n;
        }
        if (n != 4) {
          entry.fail("\"bbox\" has " + std::to_string(n) + " numbers, not 4 [x, y, width, height]");
        }
        d.x = xywh[0];
        d.y = xywh[1];
        d.w = xywh[2];
        d.h = xywh[3];
        has_bbox = true;
      }
      // Other keys (id, area, segmentation, ...) are recomputed by loadRes for boxes: skipped.
    }
    if (!has_image) entry.fail("missing \"image_id\"");
    if (!has_category) entry.fail("missing \"category_id\"");
    if (!has_bbox) entry.fail("missing \"bbox\"");
    if (!has_score) entry.fail("missing \"score\"");
    out.push_back(d);
    ++index;
  }
  // current_location() answers OUT_OF_BOUNDS exactly when the whole text has been consumed.
  const char* rest = nullptr;
  if (doc.current_location().get(rest) == simdjson::SUCCESS) {
    throw Error(origin + ": not valid json at byte " + std::to_string(rest - text.data) +
                ": content after the list of detections");
  }
  return out;
}

// A place near the middle of a list of objects where one entry ends and the next begins:
// '}' ws* ',' ws* '{'. Returns false when none is found close by.
bool find_split(const JsonText& text, std::size_t* close, std::size_t* open) {
  const auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  const std::size_t end = std::min(text.size, text.size / 2 + (std::size_t(1) << 20));
  for (std::size_t i = text.size / 2; i < end; ++i) {
    if (text.data[i] != '}') continue;
    std::size_t j = i + 1;
    while (j < text.size && is_space(text.data[j])) ++j;
    if (j >= text.size || text.data[j] != ',') continue;
    ++j;
    while (j < text.size && is_space(text.data[j])) ++j;
    if (j >= text.size || text.data[j] != '{') continue;
    *close = i;
    *open = j;
    return true;
  }
  return false;
}

// The list parsed as two halves on two threads, in place: at a split "}, {" the ',' becomes
// ']' and the ' ' becomes '[', giving "[...}]" and "[{...]" without copying (the bytes are put
// back afterwards). The split is found by a byte scan, so it can land inside a string or a
// nested list; the halves are then not valid json on their own, and the caller parses the
// whole text instead (which also gives every error its true entry index and byte offset).
bool parse_halves(FileText& file, const std::string& origin, std::vector<Detection>* out) {
  const JsonText& text = file.text();
  std::size_t close = 0, open = 0;
  if (!find_split(text, &close, &open) || open - close < 3) return false;
  char* comma = file.writable(close + 1);
  char* before_open = file.writable(open - 1);
  if (comma == nullptr || before_open == nullptr) return false;
  const char saved_comma = *comma, saved_before_open = *before_open;
  *comma = ']';
  *before_open = '[';
  // The first half's padding is the rest of the text: simdjson only needs it to be readable.
  const JsonText head{text.data, close + 2, text.capacity};
  const JsonText rest{text.data + open - 1, text.size - (open - 1), text.capacity - (open - 1)};
  std::vector<Detection> second;
  bool second_ok = false;
  std::thread worker;
  try {
    worker = std::thread([&] {
      try {
        second = parse_list(rest, origin);
        second_ok = true;
      } catch (const std::exception&) {
        second_ok = false;
      }
    });
  } catch (const std::system_error&) {
    // No second thread: put the bytes back and let the caller parse the whole text.
    *comma = saved_comma;
    *before_open = saved_before_open;
    return false;
  }
  bool first_ok = false;
  try {
    *out = parse_list(head, origin);
    first_ok = true;
  } catch (const std::exception&) {
    first_ok = false;
  }
  worker.join();
  *comma = saved_comma;
  *before_open = saved_before_open;
  if (!first_ok || !second_ok) return false;
  out->insert(out->end(), second.begin(), second.end());
  return true;
}

// Files above this size are parsed in two halves at once.
constexpr std::size_t kSplitBytes = std::size_t(4) << 20;

std::vector<Detection> parse_text(FileText& file, const std::string& origin, int num_threads) {
  if (num_threads >= 2 && file.text().size >= kSplitBytes) {
    std::vector<Detection> out;
    if (parse_halves(file, origin, &out)) return out;
  }
  return parse_list(file.text(), origin);
}

void append_double(std::string& out, double v) {
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip form
  out.append(buf, result.ptr);
}

}  // namespace

std::vector<Detection> read_results(const std::string& json_path, int num_threads) {
  FileText file(json_path);
  return parse_text(file, json_path, num_threads);
}

std::vector<Detection> parse_results(std::string_view json, const std::string& origin,
                                     int num_threads) {
  FileText text(json);
  return parse_text(text, origin, num_threads);
}

void write_results(const std::string& json_path, const std::vector<Detection>& detections) {
  std::string out;
  out.reserve(detections.size() * 110 + 2);
  out += '[';
  for (std::size_t n = 0; n < detections.size(); ++n) {
    const Detection& d = detections[n];
    if (!(std::isfinite(d.x) && std::isfinite(d.y) && std::isfinite(d.w) && std::isfinite(d.h) &&
          std::isfinite(d.score))) {
      throw Error("writing " + json_path + ": detection " + std::to_string(n) +
                  " has a non-finite number");
    }
    if (n) out += ",\n";
    out += "{\"image_id\": " + std::to_string(d.image_id) +
           ", \"category_id\": " + std::to_string(d.category_id) + ", \"bbox\": [";
    append_double(out, d.x);
    out += ", ";
    append_double(out, d.y);
    out += ", ";
    append_double(out, d.w);
    out += ", ";
    append_double(out, d.h);
    out += "], \"score\": ";
    append_double(out, d.score);
    out += '}';
  }
  out += "]\n";
  write_file_atomic(json_path, out);
}

}  // namespace focaldet::eval
