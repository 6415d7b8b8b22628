-- The dump's posts worth learning from: questions and answers (a real dump also holds tag wikis,
-- their excerpts, moderator nominations and privilege/placeholder wikis: PostTypeId 3-8) with
-- Score >= min_score and a body of at most max_body_chars characters (measured on the HTML, as in
-- the dump), with the HTML turned into readable text.
select
    Id                  as post_id,
    PostTypeId          as post_type_id,
    ParentId            as parent_id,
    AcceptedAnswerId    as accepted_answer_id,
    Score               as score,
    Title               as title,
    html_to_text(Body)  as body,
    Tags                as tags,
    CreationDate        as created_at
from {{ ref('Posts') }}
where PostTypeId in (1, 2)
  and Score >= {{ var('min_score') }}
  and length(Body) <= {{ var('max_body_chars') }}
