// read_dist_env: torchrun's, the launcher's and SLURM's variables, and every bad value named.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "common/error.h"
#include "dist/dist_env.h"

namespace focaldet::dist {
namespace {

DistEnv read(const std::map<std::string, std::string>& vars) {
  return read_dist_env([&](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

// The Error's message, or "" when none was thrown.
std::string error_of(const std::map<std::string, std::string>& vars) {
  try {
    read(vars);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const std::map<std::string, std::string> kTwoRanks = {
    {"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};

std::map<std::string, std::string> with(std::map<std::string, std::string> vars,
                                        const std::string& name, const std::string& value) {
  vars[name] = value;
  return vars;
}

TEST(DistEnv, NothingSetIsOneProcess) {
  const DistEnv env = read({});
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.world_size, 1);
  EXPECT_FALSE(env.distributed());
  EXPECT_EQ(describe(env), "single process");
}

TEST(DistEnv, WorldSizeOneNeedsNoMaster) {
  const DistEnv env = read({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  EXPECT_EQ(env.world_size, 1);
  EXPECT_FALSE(env.distributed());
}

TEST(DistEnv, TorchrunVariables) {
  const DistEnv env = read({{"RANK", "3"},
                            {"WORLD_SIZE", "4"},
                            {"LOCAL_RANK", "1"},
                            {"LOCAL_WORLD_SIZE", "2"},
                            {"MASTER_ADDR", "node0"},
                            {"MASTER_PORT", "29400"},
                            {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                            {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.master_addr, "node0");
  EXPECT_EQ(env.master_port, 29400);
  EXPECT_TRUE(env.use_agent_store);
  EXPECT_EQ(env.restart_count, 2);
  EXPECT_EQ(env.source, "RANK/WORLD_SIZE");
}

TEST(DistEnv, WithoutLocalVariablesOneMachineIsAssumed) {
  const DistEnv env = read(kTwoRanks);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_FALSE(env.use_agent_store);
}

TEST(DistEnv, SlurmVariablesStandInForMissingRank) {
  const DistEnv env = read({{"SLURM_PROCID", "5"},
                            {"SLURM_NTASKS", "8"},
                            {"SLURM_LOCALID", "1"},
                            {"LOCAL_WORLD_SIZE", "4"},
                            {"MASTER_ADDR", "10.0.0.1"},
                            {"MASTER_PORT", "29500"}});
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.source, "SLURM_PROCID/SLURM_NTASKS");
}

TEST(DistEnv, TorchVariablesWinOverSlurm) {
  const DistEnv env = read(with(with(kTwoRanks, "SLURM_PROCID", "7"), "SLURM_NTASKS", "16"));
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.world_size, 2);
}

TEST(DistEnv, EmptyValueCountsAsUnset) {
  EXPECT_EQ(read({{"RANK", ""}, {"WORLD_SIZE", ""}}).world_size, 1);
}

TEST(DistEnv, NotANumberIsNamed) {
  EXPECT_EQ(error_of(with(kTwoRanks, "RANK", "one")), "RANK='one' is not a whole number");
  EXPECT_EQ(error_of(with(kTwoRanks, "WORLD_SIZE", "2x")), "WORLD_SIZE='2x' is not a whole number");
  EXPECT_EQ(error_of(with(kTwoRanks, "MASTER_PORT", "http")),
            "MASTER_PORT='http' is not a whole number");
  EXPECT_EQ(error_of(with(kTwoRanks, "LOCAL_RANK", "1.0")),
            "LOCAL_RANK='1.0' is not a whole number");
  EXPECT_EQ(error_of(with(kTwoRanks, "RANK", "99999999999999999999")),
            "RANK='99999999999999999999' is out of range");
}

TEST(DistEnv, RankMustBeBelowWorldSize) {
  EXPECT_EQ(error_of(with(kTwoRanks, "RANK", "2")),
            "RANK='2' must be below WORLD_SIZE='2' (ranks are 0..1)");
  EXPECT_NE(error_of(with(kTwoRanks, "RANK", "-1")).find("RANK='-1' must be a number from 0"),
            std::string::npos);
  EXPECT_NE(
      error_of(with(kTwoRanks, "WORLD_SIZE", "0")).find("WORLD_SIZE='0' must be a number from 1"),
      std::string::npos);
}

TEST(DistEnv, RankAndWorldSizeComeTogether) {
  EXPECT_EQ(error_of({{"WORLD_SIZE", "2"}}),
            "WORLD_SIZE is set (WORLD_SIZE='2') but RANK is not: a distributed worker needs both");
  EXPECT_EQ(error_of({{"RANK", "0"}}),
            "RANK is set (RANK='0') but WORLD_SIZE is not: a distributed worker needs both");
  EXPECT_EQ(error_of({{"SLURM_PROCID", "0"}}),
            "SLURM_PROCID is set (SLURM_PROCID='0') but SLURM_NTASKS is not: a distributed "
            "worker needs both");
}

TEST(DistEnv, MasterIsRequiredForMoreThanOneRank) {
  auto vars = kTwoRanks;
  vars.erase("MASTER_ADDR");
  EXPECT_NE(error_of(vars).find("WORLD_SIZE='2' but MASTER_ADDR is not set"), std::string::npos);
  vars = kTwoRanks;
  vars.erase("MASTER_PORT");
  EXPECT_NE(error_of(vars).find("WORLD_SIZE='2' but MASTER_PORT is not set"), std::string::npos);
  EXPECT_EQ(error_of(with(kTwoRanks, "MASTER_PORT", "70000")),
            "MASTER_PORT='70000' must be a port number from 1 to 65535");
  EXPECT_EQ(error_of(with(kTwoRanks, "MASTER_PORT", "0")),
            "MASTER_PORT='0' must be a port number from 1 to 65535");
}

TEST(DistEnv, LocalRankMustFitLocalWorldSize) {
  EXPECT_EQ(error_of(with(with(kTwoRanks, "LOCAL_RANK", "2"), "LOCAL_WORLD_SIZE", "2")),
            "LOCAL_RANK='2' must be below the processes on this machine (LOCAL_WORLD_SIZE='2')");
  EXPECT_EQ(error_of(with(kTwoRanks, "LOCAL_WORLD_SIZE", "3")),
            "LOCAL_WORLD_SIZE='3' cannot exceed WORLD_SIZE='2'");
}

TEST(DistEnv, AgentStoreFlagMustBeABoolean) {
  EXPECT_EQ(error_of(with(kTwoRanks, "TORCHELASTIC_USE_AGENT_STORE", "yes")),
            "TORCHELASTIC_USE_AGENT_STORE='yes' must be True or False");
  EXPECT_FALSE(read(with(kTwoRanks, "TORCHELASTIC_USE_AGENT_STORE", "False")).use_agent_store);
  EXPECT_NE(error_of(with(kTwoRanks, "TORCHELASTIC_RESTART_COUNT", "-2"))
                .find("TORCHELASTIC_RESTART_COUNT='-2' must be a number from 0"),
            std::string::npos);
}

}  // namespace
}  // namespace focaldet::dist
