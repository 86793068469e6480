// COCO results json: what is accepted, what is an error (naming the entry), and that writing
// then reading gives back the same doubles.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/error.h"
#include "eval/results_json.h"
#include "support/oracle.h"

namespace focaldet::test {
namespace {

using eval::parse_results;

// Runs parse_results and returns the error message ("" when it did not throw).
std::string error_of(const std::string& json) {
  try {
    parse_results(json, "dets.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR_HAS(json, ...)                                   \
  do {                                                                \
    const std::string message_ = error_of(json);                      \
    ASSERT_FALSE(message_.empty()) << "accepted: " << json;           \
    for (const char* part_ : {__VA_ARGS__}) {                         \
      EXPECT_NE(message_.find(part_), std::string::npos) << message_; \
    }                                                                 \
  } while (0)

TEST(ResultsJson, ReadsEntriesInOrderAndIgnoresOtherKeys) {
  const auto dets = parse_results(
      R"([{"image_id": 3, "category_id": 7, "bbox": [1.5, 2, 30.25, 4e1], "score": 0.125},
          {"score": 1, "bbox": [0, 0, 1, 1], "id": 99, "area": 5, "segmentation": [[1, 2]],
           "category_id": 2, "image_id": 4.0}])",
      "x");
  ASSERT_EQ(dets.size(), 2u);
  EXPECT_EQ(dets[0].image_id, 3);
  EXPECT_EQ(dets[0].category_id, 7);
  EXPECT_EQ(dets[0].x, 1.5);
  EXPECT_EQ(dets[0].y, 2.0);
  EXPECT_EQ(dets[0].w, 30.25);
  EXPECT_EQ(dets[0].h, 40.0);
  EXPECT_EQ(dets[0].score, 0.125);
  EXPECT_EQ(dets[1].image_id, 4);
  EXPECT_EQ(dets[1].category_id, 2);
  EXPECT_EQ(dets[1].score, 1.0);
}

TEST(ResultsJson, EmptyListIsNoDetections) { EXPECT_TRUE(parse_results("[]", "x").empty()); }

TEST(ResultsJson, NotAListIsAnError) {
  EXPECT_ERROR_HAS(R"({"image_id": 1})", "dets.json", "not a list");
}

TEST(ResultsJson, MalformedJsonIsAnError) {
  EXPECT_ERROR_HAS(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5},)",
                   "dets.json");
  EXPECT_ERROR_HAS(R"([] [])", "dets.json", "after the list");
}

TEST(ResultsJson, ByteOrderMarkIsSkipped) {
  const auto dets = parse_results(
      "\xEF\xBB\xBF[{\"image_id\": 1, \"category_id\": 2, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}]",
      "x");
  ASSERT_EQ(dets.size(), 1u);
  EXPECT_EQ(dets[0].category_id, 2);
}

// simdjson's on-demand parser put every truncated file "at byte 0"; the message now says
// where the text ends and what was being read.
TEST(ResultsJson, TruncatedFileSaysWhereItEnds) {
  const std::string whole =
      R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5},
          {"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}])";
  for (const std::size_t cut : {whole.size() - 1, whole.size() - 10, whole.size() - 30}) {
    const std::string message = error_of(whole.substr(0, cut));
    ASSERT_FALSE(message.empty()) << cut;
    EXPECT_EQ(message.find("byte 0)"), std::string::npos) << message;
    // The offset given is where the text stops (a string cut open is reported at its start).
    const std::size_t at = message.find("(byte ");
    ASSERT_NE(at, std::string::npos) << message;
    EXPECT_GE(std::stoul(message.substr(at + 6)), cut - 10) << message;
    EXPECT_LE(std::stoul(message.substr(at + 6)), cut) << message;
    if (cut < whole.size() - 1) EXPECT_NE(message.find("[1]"), std::string::npos) << message;
  }
}

// Issue 10, finding 6: an unclosed 100k-deep array printed its whole path (300 KB).
TEST(ResultsJson, DeepUnclosedArrayGivesAShortPath) {
  const std::string message = error_of(std::string(100000, '['));
  EXPECT_LT(message.size(), 400u) << message.size();
  EXPECT_NE(message.find("[0][0][0][0][0][0]...(99988 levels)...[0][0][0][0][0][0]"),
            std::string::npos)
      << message;
}

TEST(ResultsJson, IdTooLargeNamesTheDetectionAndKey) {
  EXPECT_ERROR_HAS(
      R"([{"image_id": 99999999999999999999999, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])",
      "detection 0", "image_id", "99999999999999999999999", "too large");
  EXPECT_ERROR_HAS(
      R"([{"image_id": 1, "category_id": 18446744073709551615, "bbox": [0, 0, 1, 1], "score": 1}])",
      "detection 0", "category_id", "too large");
  EXPECT_ERROR_HAS(
      R"([{"image_id": 9000000000000000000.0, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])",
      "detection 0", "image_id", "too large");
}

// simdjson 3.0.1's on-demand get_double reads 0.50000000000000000000001 as 9.3e-05; long
// literals must still read as strtod reads them.
TEST(ResultsJson, LongNumberLiteralsReadExactly) {
  const auto dets = parse_results(
      R"([{"image_id": 3.00000000000000000000, "category_id": 1,
           "bbox": [0.12345678901234567890123, 1, 2, 123.45678901234567890123],
           "score": 0.50000000000000000000001}])",
      "x");
  ASSERT_EQ(dets.size(), 1u);
  EXPECT_EQ(dets[0].image_id, 3);
  EXPECT_EQ(dets[0].x, std::strtod("0.12345678901234567890123", nullptr));
  EXPECT_EQ(dets[0].h, std::strtod("123.45678901234567890123", nullptr));
  EXPECT_EQ(dets[0].score, 0.5);
}

TEST(ResultsJson, EntryThatIsNotAnObjectIsNamed) {
  EXPECT_ERROR_HAS(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}, 3])",
                   "detection 1", "not a json object");
}

TEST(ResultsJson, MissingKeysAreNamed) {
  EXPECT_ERROR_HAS(R"([{"category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}])", "detection 0",
                   "image_id");
  EXPECT_ERROR_HAS(R"([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}])", "detection 0",
                   "category_id");
  EXPECT_ERROR_HAS(R"([{"image_id": 1, "category_id": 1, "score": 0.5}])", "detection 0", "bbox");
  EXPECT_ERROR_HAS(
      R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5},
          {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}])",
      "detection 1", "score");
}

TEST(ResultsJson, WrongBboxLengthIsNamed) {
  EXPECT_ERROR_HAS(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.5}])",
                   "detection 0", "3 numbers");
  EXPECT_ERROR_HAS(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1, 1], "score": 0.5}])",
                   "detection 0", "5 numbers");
  EXPECT_ERROR_HAS(R"([{"image_id": 1, "category_id": 1, "bbox": "0 0 1 1", "score": 0.5}])",
                   "detection 0", "bbox");
}

TEST(ResultsJson, NonFiniteOrNonNumericValuesAreNamed) {
  // JSON has no NaN/Infinity (Python writes them anyway); 1e999 overflows a double.
  EXPECT_ERROR_HAS(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": NaN}])",
                   "dets.json");
  EXPECT_ERROR_HAS(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1e999, 1], "score": 0.5}])",
                   "detection 0", "finite");
  EXPECT_ERROR_HAS(R"([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "high"}])",
                   "detection 0", "score");
  EXPECT_ERROR_HAS(R"([{"image_id": "a", "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])",
                   "detection 0", "image_id");
  EXPECT_ERROR_HAS(R"([{"image_id": 1.5, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])",
                   "detection 0", "image_id", "not an integer");
}

// Text of `n` entries (> 4 MB for n >= 40000, so it is parsed in two halves on two threads),
// Python's json.dump layout ("}, {"); `middle_note` adds a string that looks like an entry
// boundary to the entry in the middle.
std::string big_results(int n, const std::string& middle_note = "") {
  std::ostringstream out;
  out.precision(17);
  out << "[";
  for (int i = 0; i < n; ++i) {
    if (i) out << ", ";
    out << "{\"image_id\": " << (i % 997) + 1 << ", \"category_id\": " << (i % 7) + 1
        << ", \"bbox\": [" << i * 0.37 << ", " << i / 3.0 << ", 10.5, " << 1 + i % 13
        << "], \"score\": " << (i % 1000) / 1000.0;
    if (i == n / 2 && !middle_note.empty()) out << ", \"note\": \"" << middle_note << "\"";
    out << ", \"segmentation\": [[1, 2, 3, 4, 5, 6, 7, 8]]}";
  }
  out << "]";
  return out.str();
}

void expect_same(const std::vector<eval::Detection>& a, const std::vector<eval::Detection>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t n = 0; n < a.size(); ++n) {
    ASSERT_EQ(a[n].image_id, b[n].image_id) << n;
    ASSERT_EQ(a[n].category_id, b[n].category_id) << n;
    ASSERT_EQ(a[n].x, b[n].x) << n;
    ASSERT_EQ(a[n].y, b[n].y) << n;
    ASSERT_EQ(a[n].w, b[n].w) << n;
    ASSERT_EQ(a[n].h, b[n].h) << n;
    ASSERT_EQ(a[n].score, b[n].score) << n;
  }
}

TEST(ResultsJson, TwoThreadParseEqualsOneThreadParse) {
  const std::string text = big_results(50000);
  ASSERT_GT(text.size(), std::size_t(4) << 20);
  const auto one = parse_results(text, "x", 1);
  const auto two = parse_results(text, "x", 2);
  ASSERT_EQ(one.size(), 50000u);
  EXPECT_EQ(one[49999].image_id, 49999 % 997 + 1);
  EXPECT_EQ(one[12345].x, 12345 * 0.37);
  expect_same(one, two);
  // From a file (mapped, split in place) too, and the file is left as it was.
  const std::string dir = make_temp_dir("focaldet_results_");
  const std::string path = dir + "/dets.json";
  std::ofstream(path) << text;
  expect_same(one, eval::read_results(path, 2));
  std::ifstream in(path);
  std::stringstream back;
  back << in.rdbuf();
  EXPECT_TRUE(back.str() == text);
  std::filesystem::remove_all(dir);
}

TEST(ResultsJson, SplitInsideAStringFallsBackToOneParse) {
  // A 3 MB string in the middle entry, made of entry boundaries: the middle byte of the text
  // falls inside it, so the byte scan splits inside the string.
  std::string note;
  for (int i = 0; i < 750000; ++i) note += "}, {";
  const std::string text = big_results(50000, note);
  expect_same(parse_results(text, "x", 1), parse_results(text, "x", 2));
}

TEST(ResultsJson, ErrorInSecondHalfNamesItsIndexInTheWholeList) {
  std::string text = big_results(50000);
  // Entry 40000 loses its score key: its text is changed from "score" to "scare".
  std::size_t pos = 0;
  for (int i = 0; i <= 40000; ++i) pos = text.find("\"score\"", pos + 1);
  text.replace(pos, 7, "\"scare\"");
  EXPECT_ERROR_HAS(text, "detection 40000", "missing \"score\"");
}

TEST(ResultsJson, MissingFileIsAnError) {
  EXPECT_THROW(eval::read_results("/nonexistent/dets.json"), Error);
}

TEST(ResultsJson, WriteThenReadGivesTheSameDoubles) {
  std::vector<eval::Detection> dets(3);
  dets[0] = {12, 3, 0.1, 1.0 / 3, 1e-7, 123456.789, 0.9999999999999999};
  dets[1] = {-4, 90, 0, 0, 0, 0, 0};
  dets[2] = {1, 1, 5e300, 2.2250738585072014e-308, 7, 8, 1e-20};
  const std::string dir = make_temp_dir("focaldet_results_");
  const std::string path = dir + "/dets.json";
  eval::write_results(path, dets);
  const auto back = eval::read_results(path);
  ASSERT_EQ(back.size(), dets.size());
  for (std::size_t n = 0; n < dets.size(); ++n) {
    EXPECT_EQ(back[n].image_id, dets[n].image_id);
    EXPECT_EQ(back[n].category_id, dets[n].category_id);
    // Exact: the writer prints the shortest text that reads back as the same double.
    EXPECT_EQ(back[n].x, dets[n].x);
    EXPECT_EQ(back[n].y, dets[n].y);
    EXPECT_EQ(back[n].w, dets[n].w);
    EXPECT_EQ(back[n].h, dets[n].h);
    EXPECT_EQ(back[n].score, dets[n].score);
  }
  // No temp file is left beside it.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) (void)entry, ++files;
  EXPECT_EQ(files, 1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace focaldet::test
