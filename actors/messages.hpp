// The messages between the pipeline's actors and each actor's interface, in one place. Read with
// DESIGN.md §1:
//
//   driver --jobs--> generator --begin, segment--> interceptor --exec--> sandbox
//     ^   <--credit--     ^  <--resume, release--       |  <--result--
//     |                                                 +--score--> reward
//     +------------------------finished-----------------+
//     |
//     +--trajectory--> learner --weights (version k+1)--> every generator
//
// Generators pull prompts with credits (how many more they can take), so the driver never pushes
// more than a generator can admit. Plain sends are one-way; the two requests (exec, score) carry a
// timeout and an error path that keeps the trajectory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/trajectory.hpp"
#include "model/safetensors.hpp"
#include "sandbox/execution_result.hpp"

namespace torl::actors {

// How a paused trajectory continues (interceptor -> generator).
struct ResumeCommand {
  int64_t id = 0;
  int64_t drop = 0;             // last sampled tokens to take back first (cut by the tool protocol)
  std::vector<int32_t> tokens;  // tokens to append (tool text; or what a cut leaves of the dropped text)
  bool stop_strings = true;     // false once the C tool rounds are spent
  int64_t max_new_tokens = 0;   // what is left of the response budget
};

// New policy weights (learner -> generators): a snapshot the learner will not touch again, shared by
// every generator, each copying it into its own model between two decode steps.
struct WeightsUpdate {
  int32_t version = 0;  // optimizer steps behind these weights
  std::shared_ptr<const model::TensorMap> tensors;  // HF parameter names
};

using jobs_atom = caf::atom_constant<caf::atom("jobs")>;
using credit_atom = caf::atom_constant<caf::atom("credit")>;
using begin_atom = caf::atom_constant<caf::atom("begin")>;
using segment_atom = caf::atom_constant<caf::atom("segment")>;
using resume_atom = caf::atom_constant<caf::atom("resume")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using step_atom = caf::atom_constant<caf::atom("step")>;
using exec_atom = caf::atom_constant<caf::atom("exec")>;
using exec_done_atom = caf::atom_constant<caf::atom("exec_done")>;
using score_atom = caf::atom_constant<caf::atom("score")>;
using finished_atom = caf::atom_constant<caf::atom("finished")>;
using weights_atom = caf::atom_constant<caf::atom("weights")>;

// Generator: decodes a batch of sequences; knows stop strings, not tools.
using GeneratorApi = caf::typed_actor<
    caf::reacts_to<jobs_atom, std::vector<RolloutJob>>,  // driver: prompts within the granted credit
    caf::reacts_to<resume_atom, ResumeCommand>,          // interceptor: append tokens, continue
    caf::reacts_to<release_atom, int64_t>,               // interceptor: trajectory done, free its slot
    caf::reacts_to<weights_atom, WeightsUpdate>,         // learner: decode with these weights from now on
    caf::reacts_to<step_atom>>;                          // itself: one engine step

// Interceptor: the tool protocol (ToolLoop) for every live trajectory.
using InterceptorApi = caf::typed_actor<
    caf::reacts_to<begin_atom, RolloutJob>,  // generator: admitted; its segments follow
    caf::reacts_to<segment_atom, Segment>>;  // generator: what it sampled until a pause

// Sandbox: runs code on a sandbox::CodeRunner.
using SandboxApi = caf::typed_actor<
    caf::replies_to<exec_atom, std::string>::with<sandbox::ExecutionResult>,
    caf::reacts_to<exec_done_atom, uint64_t, sandbox::ExecutionResult>>;  // the runner's callback

// Reward: scores a finished trajectory.
using RewardApi = caf::typed_actor<caf::replies_to<score_atom, Trajectory>::with<Trajectory>>;

// Driver: hands out jobs, collects finished trajectories.
using DriverApi = caf::typed_actor<
    caf::reacts_to<jobs_atom, std::vector<RolloutJob>>,  // the caller: more work
    caf::reacts_to<credit_atom, int64_t>,                // generator: it can take this many more jobs
    caf::reacts_to<finished_atom, Trajectory>>;          // interceptor: scored (or failed) trajectory

// Learner: collects each step's groups, takes the GRPO step, publishes the weights.
using LearnerApi = caf::typed_actor<caf::reacts_to<finished_atom, Trajectory>>;  // driver's caller: one more sample

}  // namespace torl::actors

// Local messages only: these types never cross a process boundary, so they need no serializer.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(torl::actors::RolloutJob)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<torl::actors::RolloutJob>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(torl::actors::Segment)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(torl::actors::ResumeCommand)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(torl::actors::Trajectory)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(torl::sandbox::ExecutionResult)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(torl::actors::WeightsUpdate)
