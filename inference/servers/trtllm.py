"""`trtllm`: TensorRT-LLM's OpenAI server (`trtllm-serve`, PyTorch backend), on the GPUs of one node.

trtllm-serve takes the model as its first argument and snake_case flags; a multi-node TensorRT-LLM server
is launched through MPI, which a job's single server process cannot do, so it is refused at submission.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import SERVER_TYPES, LaunchRequest, ServerLaunch, ServerType, ServerTypeError


@SERVER_TYPES.register("trtllm")
class TensorRTLLMServer(ServerType):
    name = "trtllm"
    sampling_extras = True
    honours_skip_special_tokens = True
    keep_stop_string = {"include_stop_str_in_output": True}

    def check(self, server_gpus: int, server_nodes: int) -> None:
        super().check(server_gpus, server_nodes)
        if server_gpus == 0:
            raise ServerTypeError("TensorRT-LLM needs GPUs (server_gpus >= 1)")
        if server_nodes > 1:
            raise ServerTypeError("server_type=trtllm runs on one node here (server_nodes=1)")

    def command(self, request: LaunchRequest) -> ServerLaunch:
        r = request
        self.check(r.server_gpus, r.server_nodes)
        # the console script: beside ASSAY_TRTLLM_PYTHON's interpreter when set, else on PATH (the image's)
        configured = os.environ.get("ASSAY_TRTLLM_PYTHON")
        executable = str(Path(configured).with_name("trtllm-serve")) if configured else "trtllm-serve"
        argv = [executable, r.model, "--host", r.host, "--port", str(r.port), "--backend", "pytorch"]
        argv += ["--tp_size", str(r.server_gpus), "--served_model_name", r.served_model_name]
        return ServerLaunch(argv + list(r.extra_args), {}, r.health_url)
