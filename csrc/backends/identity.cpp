// The identity backend: each output is a copy of the input of the same name.
#include "native_backend.hpp"

namespace ir {
namespace {

class IdentityBackend final : public NativeBackend {
 public:
  [[nodiscard]] int32_t instances() const override { return 0; }
  [[nodiscard]] const std::vector<TensorSig>& inputs() const override { return none_; }
  [[nodiscard]] const std::vector<TensorSig>& outputs() const override { return none_; }
  [[nodiscard]] const std::string& info() const override { return info_; }

  Status run(int32_t /*instance*/, ir_batch* batch) override {
    for (const InputView& in : batch->inputs) {
      ir_tensor t{in.name.c_str(), in.dtype, static_cast<int32_t>(in.shape.size()), in.shape.data(), in.data, in.byte_size};
      IR_RETURN_IF_ERROR(batch->model->set_output(batch, t));
    }
    return Status::Ok();
  }

 private:
  std::vector<TensorSig> none_;
  std::string info_ = "identity";
};

}  // namespace

std::unique_ptr<NativeBackend> make_identity_backend() { return std::make_unique<IdentityBackend>(); }

}  // namespace ir
