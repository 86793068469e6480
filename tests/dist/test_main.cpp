// test_dist's main: the DistWorker.* tests run only inside the ranks other tests start (see
// dist_test_util.h), so a plain run leaves them out instead of listing them as skipped.
#include <gtest/gtest.h>

#include <string>

#include "dist_test_util.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (!focaldet::test::is_rank_process()) {
    const std::string filter = GTEST_FLAG_GET(filter);
    GTEST_FLAG_SET(filter,
                   filter + (filter.find('-') == std::string::npos ? "-" : ":") + "DistWorker.*");
  }
  return RUN_ALL_TESTS();
}
