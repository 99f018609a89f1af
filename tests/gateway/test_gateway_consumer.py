"""RealtimeConsumer over a real daphne: exact frames for V1/V2, joins, heartbeats, leave,
broadcast between sockets (self/ack, binary), relayed group messages and postgres changes."""

from __future__ import annotations

from tests.gateway.gateway_support import GatewayFactory, connect


async def test_heartbeat_join_and_leave_frames_v2(gateway_factory: GatewayFactory) -> None:
    server = await gateway_factory()
    client = await connect(server)
    async with client:
        await client.send('[null,"7","phoenix","heartbeat",{}]')
        assert await client.recv_raw() == (
            '[null,"7","phoenix","phx_reply",{"status":"ok","response":{}}]'
        )
        await client.send('["1","1","realtime:room:1","phx_join",{"config":{}}]')
        assert await client.recv_raw() == (
            '["1","1","realtime:room:1","phx_reply",'
            '{"status":"ok","response":{"postgres_changes":[]}}]'
        )
        await client.send('["1","2","realtime:room:1","phx_leave",{}]')
        assert await client.recv_raw() == (
            '["1","2","realtime:room:1","phx_reply",{"status":"ok","response":{}}]'
        )
        assert await client.recv_raw() == '["1","1","realtime:room:1","phx_close",{}]'
        await client.send('["1","3","realtime:room:1","broadcast",{"event":"x","payload":{}}]')
        assert await client.recv_raw() == (
            '[null,"3","realtime:room:1","phx_reply",'
            '{"status":"error","response":{"reason":"unmatched topic"}}]'
        )
