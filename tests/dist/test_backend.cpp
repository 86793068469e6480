// dist.backend: which process group the collectives run on (dist/backend.h). On Debian's CPU-only
// LibTorch (no FOCALDET_WITH_NCCL) auto is gloo and nccl is an error naming the key; the rules for
// a CUDA build are checked through select_backend's nccl_built argument.
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "dist/backend.h"
#include "dist/distributed.h"

namespace focaldet::dist {
namespace {

// The Error's message for these arguments, or "" when none was thrown.
std::string error_of(const std::string& requested, bool on_cuda, bool nccl_built,
                     const std::string& origin = "") {
  try {
    select_backend(requested, on_cuda, nccl_built, origin);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Backend, Names) {
  EXPECT_STREQ(backend_name(Backend::gloo), "gloo");
  EXPECT_STREQ(backend_name(Backend::nccl), "nccl");
}

TEST(Backend, AutoIsNcclOnlyWithNcclAndCuda) {
  EXPECT_EQ(select_backend("auto", /*on_cuda=*/false, /*nccl_built=*/false), Backend::gloo);
  EXPECT_EQ(select_backend("auto", /*on_cuda=*/true, /*nccl_built=*/false), Backend::gloo);
  EXPECT_EQ(select_backend("auto", /*on_cuda=*/false, /*nccl_built=*/true), Backend::gloo);
  EXPECT_EQ(select_backend("auto", /*on_cuda=*/true, /*nccl_built=*/true), Backend::nccl);
}

TEST(Backend, GlooIsAlwaysGloo) {
  for (const bool on_cuda : {false, true}) {
    for (const bool nccl_built : {false, true}) {
      EXPECT_EQ(select_backend("gloo", on_cuda, nccl_built), Backend::gloo);
    }
  }
}

TEST(Backend, NcclWhereItCanRun) {
  EXPECT_EQ(select_backend("nccl", /*on_cuda=*/true, /*nccl_built=*/true), Backend::nccl);
}

TEST(Backend, NcclWithoutNcclSupportNamesTheKeyAndTheBuild) {
  const std::string e = error_of("nccl", /*on_cuda=*/true, /*nccl_built=*/false, "x.yaml:7");
  EXPECT_EQ(e.rfind("x.yaml:7: dist.backend: nccl cannot be used: ", 0), 0u) << e;
  EXPECT_NE(e.find("built without NCCL"), std::string::npos) << e;
  EXPECT_NE(e.find("-DFOCALDET_CUDA=ON"), std::string::npos) << e;
  EXPECT_EQ(e.find("trains on the CPU"), std::string::npos) << e;
}

TEST(Backend, NcclWithoutCudaNamesTheKeyAndTheDevice) {
  const std::string e = error_of("nccl", /*on_cuda=*/false, /*nccl_built=*/true);
  EXPECT_EQ(e.rfind("dist.backend: nccl cannot be used: ", 0), 0u) << e;
  EXPECT_NE(e.find("trains on the CPU"), std::string::npos) << e;
  EXPECT_EQ(e.find("built without NCCL"), std::string::npos) << e;
}

TEST(Backend, NcclWithNeitherSaysBoth) {
  const std::string e = error_of("nccl", /*on_cuda=*/false, /*nccl_built=*/false);
  EXPECT_NE(e.find("built without NCCL"), std::string::npos) << e;
  EXPECT_NE(e.find("trains on the CPU"), std::string::npos) << e;
}

TEST(Backend, AnUnknownNameIsAnError) {
  const std::string e = error_of("mpi", false, false, "--set dist.backend=mpi");
  EXPECT_EQ(e, "--set dist.backend=mpi: dist.backend: must be one of auto, gloo, nccl; got 'mpi'");
}

// What the trainer gets in this binary: it trains on the CPU, so auto is gloo whatever the build.
TEST(Backend, ThisBuildTrainingOnTheCpu) {
  EXPECT_EQ(select_backend("auto", /*on_cuda=*/false), Backend::gloo);
  EXPECT_EQ(select_backend("auto", /*on_cuda=*/true),
            built_with_nccl() ? Backend::nccl : Backend::gloo);
  if (built_with_nccl()) GTEST_SKIP() << "built with NCCL (FOCALDET_CUDA=ON)";
  EXPECT_THROW(select_backend("nccl", /*on_cuda=*/true), Error);
}

// A Distributed asked for NCCL in a build without it refuses, even for one process.
TEST(Backend, DistributedRefusesNcclWithoutIt) {
  if (built_with_nccl()) GTEST_SKIP() << "built with NCCL (FOCALDET_CUDA=ON)";
  DistOptions options;
  options.backend = Backend::nccl;
  try {
    Distributed dist(DistEnv{}, options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dist.backend: nccl"), std::string::npos) << e.what();
  }
  Distributed gloo(DistEnv{}, DistOptions{});
  EXPECT_EQ(gloo.backend(), Backend::gloo);
  EXPECT_TRUE(gloo.device().is_cpu());
}

}  // namespace
}  // namespace focaldet::dist
