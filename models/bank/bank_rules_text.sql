-- The bank's policy and tone rules as one text block for the response prompt ("P01. ...").
select
    string_agg(rule_id || '. ' || trim(rule), chr(10) order by kind, rule_id) as rules_text,
    count(*)                                                                  as n_rules
from {{ ref('bank_rules') }}
