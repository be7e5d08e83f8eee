// Entry point of the `torl` binary; all logic is in torl_main (tools/torl.cpp) so tests can call it.
#include <cstdlib>
#include <iostream>

#include "model/device.hpp"
#include "tools/commands.hpp"

int main(int argc, char** argv) {
  torl::model::use_available_cpus();
  if (!std::getenv("TORL_DEFAULT_MALLOC")) torl::model::keep_freed_memory();  // env: for comparisons
  return torl::tools::torl_main(torl::tools::Args(argv + 1, argv + argc), std::cout, std::cerr);
}
