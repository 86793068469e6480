// The dist.backend key in a config: its default, its values, and the error a config that asks for
// nccl gets on this CPU build, naming the file and line.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/error.h"
#include "config/config_io.h"
#include "dist/backend.h"
#include "support/temp_dir.h"

namespace focaldet::dist {
namespace {

// A valid config (5 lines) over a stub dataset, then `extra`.
config::Config parse(const test::TempDir& dir, const std::string& extra) {
  std::filesystem::create_directories(dir.path() / "data" / "images");
  dir.write("data/train.json", "{}");
  return config::parse_config(
      "data:\n  image_root: data/images\n  train: data/train.json\ntrain:\n  max_iters: 10\n" +
          extra,
      "x.yaml", dir.str());
}

TEST(BackendConfig, DefaultIsAutoWhichIsGlooOnTheCpu) {
  test::TempDir dir;
  const config::Config c = parse(dir, "");
  EXPECT_EQ(c.dist.backend, "auto");
  EXPECT_EQ(select_backend(c.dist.backend, /*on_cuda=*/false), Backend::gloo);
  EXPECT_NE(config::to_yaml(c).find("backend: auto"), std::string::npos);
}

TEST(BackendConfig, AnUnknownValueNamesTheLine) {
  test::TempDir dir;
  try {
    parse(dir, "dist:\n  backend: cuda\n");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "x.yaml:7: dist.backend: must be one of auto, gloo, nccl; got 'cuda'"),
              std::string::npos)
        << e.what();
  }
}

TEST(BackendConfig, NcclOnThisBuildIsAnErrorNamingTheLine) {
  if (built_with_nccl()) GTEST_SKIP() << "built with NCCL (FOCALDET_CUDA=ON)";
  test::TempDir dir;
  const config::Config c = parse(dir, "dist:\n  backend: nccl\n");
  EXPECT_EQ(c.dist.backend, "nccl");
  try {
    // As the trainer calls it: the model is on the CPU.
    select_backend(c.dist.backend, /*on_cuda=*/false, config::where(c, "dist.backend"));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("x.yaml:7: dist.backend: nccl cannot be used: ", 0), 0u) << m;
    EXPECT_NE(m.find("built without NCCL"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace focaldet::dist
