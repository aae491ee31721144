import pytest
import requests

from lab.httpserver import DropConnection, Request, Response, Router, serve


def _app() -> Router:
    router = Router()
    router.add("GET", "/items/{id:int}", lambda r: Response.json(200, {"id": r.params["id"]}))
    router.add("POST", "/echo", lambda r: Response.json(201, r.json()))
    router.add("GET", "/stream", lambda r: Response(200, iter([b"ab", b"cd"]), length=4))
    router.add("GET", "/drop", lambda r: (_ for _ in ()).throw(DropConnection()))
    return router


def _dispatch(router: Router):
    def app(request: Request) -> Response:
        resolved = router.resolve(request.method, request.path)
        if isinstance(resolved, int):
            return Response.text(resolved, "no")
        handler, request.params = resolved
        return handler(request)

    return app


def test_router_converts_int_parameters_and_answers_json() -> None:
    with serve(_dispatch(_app()), "127.0.0.1") as endpoint:
        assert requests.get(f"{endpoint.base_url}/items/7", timeout=5).json() == {"id": 7}
        assert requests.post(f"{endpoint.base_url}/echo", json={"a": 1}, timeout=5).status_code == 201


def test_unknown_path_is_404_and_wrong_method_405() -> None:
    with serve(_dispatch(_app()), "127.0.0.1") as endpoint:
        assert requests.get(f"{endpoint.base_url}/nothing", timeout=5).status_code == 404
        assert requests.delete(f"{endpoint.base_url}/items/7", timeout=5).status_code == 405


def test_streamed_body_arrives_whole() -> None:
    with serve(_dispatch(_app()), "127.0.0.1") as endpoint:
        assert requests.get(f"{endpoint.base_url}/stream", timeout=5).content == b"abcd"


def test_dropped_connection_is_a_connection_error_for_clients() -> None:
    with serve(_dispatch(_app()), "127.0.0.1") as endpoint, pytest.raises(requests.ConnectionError):
        requests.get(f"{endpoint.base_url}/drop", timeout=5)
