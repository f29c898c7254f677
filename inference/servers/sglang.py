"""`sglang`: SGLang's server, on GPUs only; tensor parallelism spans every GPU of every node."""

from __future__ import annotations

from . import SERVER_TYPES, LaunchRequest, ServerLaunch, ServerType, ServerTypeError, url_host


@SERVER_TYPES.register("sglang")
class SGLangServer(ServerType):
    name = "sglang"
    sampling_extras = True
    honours_skip_special_tokens = True
    keep_stop_string = {"no_stop_trim": True}

    def check(self, server_gpus: int, server_nodes: int) -> None:
        super().check(server_gpus, server_nodes)
        if server_gpus == 0:
            raise ServerTypeError(
                "SGLang needs GPUs here (server_gpus >= 1); on a CPU-only machine use server_type=vllm"
            )

    def command(self, request: LaunchRequest) -> ServerLaunch:
        r = request
        argv = [r.python, "-m", "sglang.launch_server", "--model-path", r.model]
        argv += ["--served-model-name", r.served_model_name, "--host", r.host, "--port", str(r.port)]
        argv += ["--tp-size", str(r.server_gpus * r.server_nodes)]
        if r.server_nodes > 1:
            # every node runs the same command with its rank
            argv += ["--nnodes", str(r.server_nodes), "--node-rank", str(r.node_rank)]
            argv += ["--dist-init-addr", f"{url_host(str(r.master_addr))}:{r.master_port}"]
        return ServerLaunch(argv + list(r.extra_args), {}, r.health_url)
