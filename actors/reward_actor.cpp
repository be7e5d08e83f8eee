#include "actors/reward_actor.hpp"

#include "rewards/reward.hpp"

namespace torl::actors {

RewardApi::behavior_type reward_actor(RewardApi::stateful_pointer<RewardState> self, RewardSetup setup) {
  self->state.setup = std::move(setup);
  return {
      [self](score_atom, Trajectory& trajectory) -> Trajectory {
        const RewardSetup& s = self->state.setup;
        const double start = s.clock->now_ms();
        trajectory.score = rewards::score_response(trajectory.text, trajectory.job.gold_answer, s.reward,
                                                   trajectory.code_failed(s.reward.exec_error_rule));
        if (s.trace) s.trace->busy("reward", "score", start, trajectory.id());
        return std::move(trajectory);
      },
  };
}

}  // namespace torl::actors
