// TRANSITIONAL: until the plugin loader lands (plugin.cpp); deleted then.
#include "plugin.hpp"

namespace ir {
Status load_plugin(const std::string& path, const irb_host*, const irb_backend**) {
  return Status(IR_ERROR_UNAVAILABLE, "plugins are not built yet: " + path);
}
}  // namespace ir
