-- target/exports/chat.jsonl, read back line by line through the chat_export view (read_json fails
-- on a line that does not parse), holds exactly the conversations of chat_formatted.
with exported as (
    select id, split, to_json(messages) as messages from {{ ref('chat_export') }}
),
formatted as (
    select conversation_id as id, split, to_json(messages) as messages from {{ ref('chat_formatted') }}
)
(select 'missing from chat.jsonl' as problem, * from (select * from formatted except select * from exported))
union all
(select 'not in chat_formatted' as problem, * from (select * from exported except select * from formatted))
union all
(select 'duplicated line' as problem, id, null, null from exported group by id having count(*) > 1)
