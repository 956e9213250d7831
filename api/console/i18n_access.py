"""The console's strings for users, tokens, the demo's role logins and refused forms (merged into
i18n.STRINGS; a module of its own so that i18n.py stays short)."""
from __future__ import annotations

ACCESS: dict[str, tuple[str, str]] = {
    "users": ("用户与令牌", "Users and tokens"),
    "users_intro": ("为各角色发放访问令牌(可关联通讯录人员)、调整角色、吊销。令牌只显示一次,请当面或经安全渠道交给使用人。",
                    "Give each role an access token (optionally bound to a directory person), change roles, revoke. "
                    "A token is shown once: hand it over in person or over a safe channel."),
    "new_token": ("发放令牌", "New token"),
    "acc_role": ("角色", "Role"),
    "acc_person": ("人员", "Person"),
    "no_person": ("(不关联人员)", "(no person)"),
    "acc_label": ("用途说明", "Label"),
    "label_help": ("例如:张三的值班电脑、接口对接", "e.g. Zhang San's desk PC, an integration"),
    "acc_created": ("创建", "Created"),
    "last_login": ("最近登录", "Last login"),
    "acc_never": ("从未", "never"),
    "acc_revoked": ("已吊销", "revoked"),
    "acc_active": ("有效", "active"),
    "change_role": ("改角色", "Change role"),
    "revoke": ("吊销", "Revoke"),
    "revoke_confirm": ("吊销后此令牌立即失效,使用它登录的控制台会话也随即结束。确定吊销?",
                       "The token stops working at once, and the console sessions it opened end. Revoke it?"),
    "token_created": ("令牌已创建。它只显示这一次,请立即复制交给使用人:", "Token created. It is shown only this once; copy it now:"),
    "token_role_changed": ("角色已更新,使用此令牌的会话在下一次操作时生效。", "Role changed; its sessions follow at their next request."),
    "token_revoked": ("令牌已吊销。", "Token revoked."),
    "demo_login": ("演示:以值班表角色登录", "Demo: log in as a role of the duty roster"),
    "demo_login_help": ("仅演示数据可用:直接以演示人员身份登录,无需令牌或验证码。生产环境不显示。",
                        "Demo data only: log in as a demo person, no token or code needed. Never shown in production."),
    "demo_as": ("演示:以{role}身份登录", "Demo: log in as {role}"),
    "demo_code": ("模拟短信网关(演示):发给 {who} 的验证码是", "Simulator gateway (demo): the code sent to {who} is"),
    "demo_code_none": ("模拟短信网关(演示):暂未生成验证码;请稍候刷新,或查看", "Simulator gateway (demo): no code yet; reload in a moment, or see"),
    "form_not_for_role": ("您的角色({role})不能办理此项;可由:{allowed}。", "Your role ({role}) may not do this; allowed: {allowed}."),
    "kind_district": ("区", "District"),
    "kind_department": ("部门", "Departments"),
    "kind_town": ("乡镇(街道)", "Towns / streets"),
    "kind_village": ("村(社区)", "Villages / communities"),
}
