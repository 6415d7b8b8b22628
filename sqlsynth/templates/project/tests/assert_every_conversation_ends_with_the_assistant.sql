-- Fails on any conversation whose last turn is not a non-empty assistant message.
select id
from {{ ref('chat_conversations') }}
where messages[-1].role <> 'assistant' or length(trim(messages[-1].content)) = 0
