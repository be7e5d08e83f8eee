// Entry point of the `torl` binary; all logic is in torl_main (tools/torl.cpp) so tests can call it.
#include <iostream>

#include "model/device.hpp"
#include "tools/commands.hpp"

int main(int argc, char** argv) {
  torl::model::use_available_cpus();
  return torl::tools::torl_main(torl::tools::Args(argv + 1, argv + argc), std::cout, std::cerr);
}
